"""The Authorize.Net inbound path: receive a notification (verify its signature on the raw bytes,
store it, keep a capped forensic row of a rejected one), find the payment it concerns and refresh that
payment from the processor, retry what failed, replay, purge, and build signed samples for the test
endpoint. The notifications are stored as ``webhooks.InboundEvent`` rows.
"""

from __future__ import annotations

import json
import logging
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from core.exceptions import AuthenticationFailed, InvalidState, ValidationFailed
from core.tasks import enqueue_on_commit, task_send_later, tasks_run_eagerly
from core.text import json_depth_exceeds, recordable, recordable_bytes, recordable_json
from payments import gateways
from payments.gateways.authorize_net_notifications import transaction_notice
from payments.gateways.base import GatewayError
from payments.models import Payment, Refund
from payments.services import payment_refresh_from_processor
from webhooks import signing
from webhooks.metrics import WEBHOOK_INBOUND
from webhooks.models import InboundEvent

logger = logging.getLogger("easypay.webhooks")

# Authorize.Net's notification types (design/authorize-net.md section 4).
ANET_EVENT_TYPES = (
    "net.authorize.payment.authcapture.created",
    "net.authorize.payment.authorization.created",
    "net.authorize.payment.capture.created",
    "net.authorize.payment.priorAuthCapture.created",
    "net.authorize.payment.refund.created",
    "net.authorize.payment.void.created",
    "net.authorize.payment.fraud.held",
    "net.authorize.payment.fraud.approved",
    "net.authorize.payment.fraud.declined",
    "net.authorize.customer.created",
    "net.authorize.customer.updated",
    "net.authorize.customer.deleted",
    "net.authorize.customer.paymentProfile.created",
    "net.authorize.customer.paymentProfile.updated",
    "net.authorize.customer.paymentProfile.deleted",
    "net.authorize.customer.subscription.created",
    "net.authorize.customer.subscription.updated",
    "net.authorize.customer.subscription.suspended",
    "net.authorize.customer.subscription.terminated",
    "net.authorize.customer.subscription.cancelled",
    "net.authorize.customer.subscription.expiring",
    "net.authorize.customer.subscription.expired",
    "net.authorize.customer.subscription.failed",
)

# Headers never stored with an inbound notification.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key", "x-csrftoken"})
# The task that processes one notification, by name (its name predates this module: beat and queued
# messages know it): tasks import services.
PROCESS_TASK = "webhooks.tasks.inbound_event_process"


def _jittered(seconds: float) -> float:
    return seconds * random.uniform(0.9, 1.1)


@dataclass(frozen=True)
class InboundReceipt:
    event: InboundEvent
    duplicate: bool


def _storable_headers(headers: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for name, value in headers.items():
        if name.lower() in SECRET_HEADERS:
            continue
        out[recordable(name, 256)] = recordable(value, 1024)
    return out


# An Authorize.Net notification is a few levels deep; anything much deeper is not one.
INBOUND_MAX_DEPTH = 32


def _notification_json(raw_body: bytes) -> Any:
    """The decoded notification, or None when it is not JSON (or absurdly deep: RecursionError)."""
    try:
        payload = json.loads(raw_body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if json_depth_exceeds(payload, INBOUND_MAX_DEPTH):
        return None
    return payload


def _store_invalid(*, raw_body: bytes, headers, source_ip, signature: str, reason: str) -> None:
    """Keep a truncated forensic row of a rejected notification, at most N an hour (never processed)."""
    since = timezone.now() - timedelta(hours=1)
    recent = InboundEvent.objects.filter(signature_valid=False, created_at__gte=since).count()
    if recent >= settings.WEBHOOK_INBOUND_INVALID_MAX_PER_HOUR:
        return
    limit = settings.WEBHOOK_INBOUND_INVALID_BODY_BYTES
    event_id = ""
    parsed = _notification_json(raw_body) if len(raw_body) <= limit else None
    if isinstance(parsed, dict) and isinstance(parsed.get("notificationId"), str):
        event_id = recordable(parsed["notificationId"], 255)
    # Everything here is recorded text (core.text): stored as received, made storable, never refused.
    InboundEvent.objects.create(
        event_id=event_id,
        raw_body=recordable_bytes(raw_body[:limit], limit),
        headers=_storable_headers(headers),
        source_ip=source_ip,
        signature=recordable(signature, 255),
        signature_valid=False,
        status=InboundEvent.Status.IGNORED,
        error_message=reason,
        metadata={"body_bytes": len(raw_body), "truncated": len(raw_body) > limit},
    )


def inbound_receive(
    *,
    raw_body: bytes,
    headers: Mapping[str, str],
    source_ip: str | None,
    merchant_id=None,
    metadata: dict | None = None,
) -> InboundReceipt:
    """Verify and store an Authorize.Net notification, then process it in the background.

    A bad, missing or truncated ``X-ANET-Signature`` raises ``AuthenticationFailed`` (401) and nothing
    is processed. A repeated ``notificationId`` returns the stored row (``duplicate``) and is not
    processed again: the unique constraint decides, so simultaneous duplicates are processed once.
    """
    signature = headers.get("X-ANET-Signature") or ""
    if len(raw_body) > settings.WEBHOOK_INBOUND_MAX_BODY_BYTES:
        WEBHOOK_INBOUND.labels(result="malformed").inc()
        raise ValidationFailed("The notification body is too large.", details={"body": ["Too large."]})
    if not signing.anet_signature_valid(raw_body, signature, settings.AUTHORIZE_NET_SIGNATURE_KEY):
        WEBHOOK_INBOUND.labels(result="invalid_signature").inc()
        reason = "missing X-ANET-Signature" if not signature else "X-ANET-Signature does not match the body"
        _store_invalid(raw_body=raw_body, headers=headers, source_ip=source_ip, signature=signature, reason=reason)
        raise AuthenticationFailed("The X-ANET-Signature header is missing or invalid.")
    payload = _notification_json(raw_body)
    notification_id = payload.get("notificationId") if isinstance(payload, dict) else None
    if isinstance(notification_id, str):
        # Signed, but still text from outside that is recorded: NUL and lone surrogates are escaped
        # (jsonb and text columns cannot hold them), never a reason to lose the notification.
        payload = recordable_json(payload, max_depth=INBOUND_MAX_DEPTH)
        notification_id = payload["notificationId"]
    if not isinstance(notification_id, str) or not notification_id.strip() or len(notification_id) > 255:
        WEBHOOK_INBOUND.labels(result="malformed").inc()
        raise ValidationFailed(
            "The notification is not a JSON object with a notificationId.",
            details={"notificationId": ["Required."]},
        )
    event_type = payload.get("eventType")
    try:
        with transaction.atomic():
            event = InboundEvent.objects.create(
                event_id=notification_id,
                event_type=event_type[:100] if isinstance(event_type, str) else "",
                source=InboundEvent.Source.AUTHORIZE_NET,
                payload=payload,
                raw_body=recordable_bytes(raw_body),
                headers=_storable_headers(headers),
                source_ip=source_ip,
                signature=recordable(signature, 255),
                signature_valid=True,
                status=InboundEvent.Status.PENDING,
                merchant_id=merchant_id,
                metadata=metadata or {},
            )
            _enqueue_inbound_on_commit(event.pk)
    except IntegrityError:
        existing = InboundEvent.objects.get(
            source=InboundEvent.Source.AUTHORIZE_NET, event_id=notification_id, signature_valid=True
        )
        WEBHOOK_INBOUND.labels(result="duplicate").inc()
        return InboundReceipt(event=existing, duplicate=True)
    WEBHOOK_INBOUND.labels(result="accepted").inc()
    return InboundReceipt(event=InboundEvent.objects.get(pk=event.pk), duplicate=False)


def _enqueue_inbound_on_commit(event_id) -> None:
    enqueue_on_commit(PROCESS_TASK, str(event_id))


def inbound_sample_build(
    *, event_type: str = "net.authorize.payment.authcapture.created", transaction_id: str | None = None, amount=None
) -> tuple[bytes, dict[str, str]]:
    """A notification as Authorize.Net would send it, signed with our signature key (for the test
    endpoint): compact JSON and its ``X-ANET-Signature`` header."""
    body = {
        "notificationId": str(uuid.uuid4()),
        "eventType": event_type,
        "eventDate": timezone.now().isoformat().replace("+00:00", "Z"),
        "webhookId": str(uuid.uuid5(uuid.NAMESPACE_URL, "easypay:authorize-net:test")),
        "payload": {
            "responseCode": 1,
            "authCode": "TEST00",
            "avsResponse": "Y",
            "authAmount": float(amount) if amount is not None else 1.00,
            "entityName": "transaction",
            "id": transaction_id or str(random.randint(10**10, 10**11 - 1)),
        },
    }
    raw = json.dumps(body, separators=(",", ":")).encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "X-ANET-Signature": signing.anet_signature_header(raw, settings.AUTHORIZE_NET_SIGNATURE_KEY),
        "User-Agent": "EasyPay-Webhook-Test",
    }
    return raw, headers


class _Ignore(Exception):
    """Processing found nothing to do (the reason is stored)."""


def _find_payment(payload: dict):
    """Our payment a transaction notification concerns: by transaction id (payment or refund), by
    invoice number / reference, or, for a transaction we never saw (a refund made elsewhere), by
    asking the processor which transaction it refers to. Gateway errors propagate (retried)."""
    notice = transaction_notice(payload)
    if not notice.about_transaction:
        raise _Ignore(f"entity {notice.subject!r} is not handled")
    transaction_id = notice.transaction_id
    references = notice.references

    def by_txn(txn_id: str):
        if not txn_id or txn_id == "0":
            return None
        payment = Payment.objects.filter(processor_transaction_id=txn_id).order_by("-created_at").first()
        if payment is None:
            refund = Refund.objects.select_related("payment").filter(processor_transaction_id=txn_id).first()
            payment = refund.payment if refund else None
        return payment

    def by_reference(ref: str):
        if not ref:
            return None
        payment = Payment.objects.filter(reference=ref).order_by("-created_at").first()
        if payment is None:
            refund = Refund.objects.select_related("payment").filter(reference=ref).first()
            payment = refund.payment if refund else None
        return payment

    payment = by_txn(transaction_id)
    for ref in references:
        payment = payment or by_reference(ref)
    if payment is not None:
        return payment
    if not transaction_id:
        raise _Ignore("the notification names no transaction")
    details = gateways.get_gateway().transaction_details(transaction_id=transaction_id)
    if details is not None:
        payment = by_txn(details.ref_transaction_id or "") or by_reference(details.invoice_number or "")
    if payment is None:
        raise _Ignore(f"no payment matches transaction {transaction_id}")
    return payment


def _inbound_retry_delay(retry_count: int) -> float | None:
    schedule = settings.WEBHOOK_INBOUND_RETRY_SCHEDULE_SECONDS
    if retry_count > len(schedule):
        return None
    return _jittered(schedule[retry_count - 1])


def inbound_event_process(*, event_id) -> InboundEvent | None:
    """Apply a stored, signature-valid notification: find the payment and refresh it from the
    processor (whose current state is the truth, so a late or out-of-order notification cannot roll
    anything back). Claimed with a conditional update, so concurrent runs process it once; a worker
    that died mid-way is taken over after ``stale`` minutes."""
    now = timezone.now()
    stale = now - timedelta(minutes=10)
    claimed = (
        InboundEvent.objects.filter(pk=event_id, signature_valid=True)
        .filter(
            Q(status=InboundEvent.Status.PENDING, next_attempt_at__isnull=True)
            | Q(status=InboundEvent.Status.PENDING, next_attempt_at__lte=now)
            | Q(status=InboundEvent.Status.PROCESSING, updated_at__lt=stale)
        )
        .update(status=InboundEvent.Status.PROCESSING, updated_at=now)
    )
    if not claimed:
        return InboundEvent.objects.filter(pk=event_id).first()
    event = InboundEvent.objects.get(pk=event_id)
    fields: dict[str, Any] = {"updated_at": timezone.now()}  # InboundEvent columns, for .update(**fields)
    try:
        payment = _find_payment(event.payload if isinstance(event.payload, dict) else {})
        before = payment.status
        payment = payment_refresh_from_processor(payment=payment)
        fields.update(
            status=InboundEvent.Status.PROCESSED,
            processed_at=timezone.now(),
            error_message="",
            next_attempt_at=None,
            merchant_id=payment.merchant_id,
            metadata={
                **event.metadata,
                "payment_id": str(payment.pk),
                "payment_status_before": before,
                "payment_status_after": payment.status,
            },
        )
        result = "processed"
    except _Ignore as exc:
        fields.update(
            status=InboundEvent.Status.IGNORED,
            processed_at=timezone.now(),
            error_message=str(exc),
            next_attempt_at=None,
        )
        result = "ignored"
    except GatewayError as exc:
        retry_count = event.retry_count + 1
        delay = _inbound_retry_delay(retry_count)
        fields.update(retry_count=retry_count, error_message=f"processor lookup failed: {type(exc).__name__}: {exc}")
        if delay is None:
            fields.update(status=InboundEvent.Status.FAILED, next_attempt_at=None)
            result = "failed"
        else:
            fields.update(status=InboundEvent.Status.PENDING, next_attempt_at=timezone.now() + timedelta(seconds=delay))
            result = "retrying"
    except Exception as exc:  # a bug must not loop forever nor break the caller (eager mode)
        logger.exception("inbound webhook processing failed", extra={"inbound_event_id": str(event_id)})
        fields.update(
            status=InboundEvent.Status.FAILED,
            error_message=f"{type(exc).__name__}: {exc}"[:2000],
            next_attempt_at=None,
        )
        result = "failed"
    InboundEvent.objects.filter(pk=event.pk, status=InboundEvent.Status.PROCESSING).update(**fields)
    WEBHOOK_INBOUND.labels(result=result).inc()
    if result == "retrying" and not tasks_run_eagerly():
        countdown = (fields["next_attempt_at"] - timezone.now()).total_seconds()
        task_send_later(PROCESS_TASK, str(event.pk), countdown=countdown)
    return InboundEvent.objects.get(pk=event.pk)


def inbound_events_due(*, limit: int = 200) -> list:
    now = timezone.now()
    lost = now - timedelta(minutes=2)  # enqueued on commit but never run (message lost)
    return list(
        InboundEvent.objects.filter(signature_valid=True)
        .filter(
            Q(status=InboundEvent.Status.PENDING, next_attempt_at__lte=now)
            | Q(status=InboundEvent.Status.PENDING, next_attempt_at__isnull=True, updated_at__lte=lost)
            | Q(status=InboundEvent.Status.PROCESSING, updated_at__lt=now - timedelta(minutes=10))
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )


def inbound_event_replay(*, event: InboundEvent) -> InboundEvent:
    """Process a stored, signature-valid notification again (after a fix, or to re-check the
    processor). Idempotent: it only ever refreshes the payment from the processor's truth; one that
    is already waiting or being processed is left as it is."""
    if not event.signature_valid:
        raise InvalidState("Only notifications with a valid signature can be replayed.")
    with transaction.atomic():
        row = InboundEvent.objects.select_for_update().get(pk=event.pk)
        if row.status not in (InboundEvent.Status.PENDING, InboundEvent.Status.PROCESSING):
            row.status = InboundEvent.Status.PENDING
            row.next_attempt_at = None
            row.error_message = ""
            row.metadata = {**row.metadata, "replayed": int(row.metadata.get("replayed", 0)) + 1}
            row.save(update_fields=["status", "next_attempt_at", "error_message", "metadata", "updated_at"])
            _enqueue_inbound_on_commit(row.pk)
    return InboundEvent.objects.get(pk=event.pk)


def inbound_events_purge(*, now=None) -> int:
    """Delete the forensic rows of rejected (bad-signature) notifications past their retention."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.WEBHOOK_INBOUND_INVALID_RETENTION_DAYS)
    deleted, _ = InboundEvent.objects.filter(signature_valid=False, created_at__lt=cutoff).delete()
    return deleted
