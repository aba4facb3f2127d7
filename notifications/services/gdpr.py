"""GDPR: what was sent to one customer (the export), and the erasure of its addresses and bodies."""

from __future__ import annotations

from django.db.models import Case, Value, When
from django.utils import timezone

from ..models import Notification

Channel = Notification.Channel


def customer_notifications_export(*, merchant_id, customer_id: str) -> list[dict]:
    """What was sent to one of the merchant's customers (the GDPR export's ``notifications``)."""
    rows = Notification.objects.filter(merchant_id=merchant_id, customer_id=customer_id).order_by("created_at")
    return [
        {
            "id": n.pk,
            "merchant_id": str(n.merchant_id),
            "kind": n.kind,
            "channel": n.channel,
            "recipient": n.recipient,
            "object_type": n.object_type,
            "object_id": n.object_id,
            "status": n.status,
            "subject": n.subject,
            "sent_at": n.sent_at.isoformat() if n.sent_at else None,
            "created_at": n.created_at.isoformat(),
        }
        for n in rows
    ]


def customer_notifications_pseudonymize(*, merchant_id, customer_id: str, email: str) -> int:
    """Replace the customer's addresses (email with the erasure pseudonym, phone numbers with a blank
    marker) and drop the rendered bodies and their context (which hold the customer's name)."""
    rows = Notification.objects.filter(merchant_id=merchant_id, customer_id=customer_id)
    return rows.update(
        recipient=Case(When(channel=Channel.SMS, then=Value("erased")), default=Value(email)),
        body_text="",
        body_html="",
        context={},
        updated_at=timezone.now(),
    )
