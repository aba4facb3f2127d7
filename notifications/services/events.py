"""The outbox listener: what each domain event tells the customer, queued in the event's transaction."""

from __future__ import annotations

from ..models import Kind, Notification
from .preferences import settings_for
from .queueing import notification_queue

Channel = Notification.Channel


def notifications_for_event(*, event) -> list[Notification]:
    """Queue what ``event`` (just recorded, inside its transaction) tells the customer.

    Called by ``webhooks.services.event_record`` for every event (registered as its listener by
    ``NotificationsConfig.ready``). Each notification is a row written in this same transaction (a
    rolled-back change sends nothing) and sent by a task after commit, so neither the SMTP server nor
    the SMS provider is ever on the request's path.
    """
    builder = _EVENT_BUILDERS.get(event.type)
    if builder is None:
        return []
    planned = builder(event.data or {})
    if planned is None:
        return []
    kind, object_type, object_id, dedupe_key, context = planned
    email = (event.data or {}).get("customer_email") or ""
    phone = (event.data or {}).get("customer_phone") or ""
    if not email and not phone:
        return []  # nobody to tell: not even the settings are read
    prefs = settings_for(merchant_id=event.merchant_id)
    if not prefs.kind_enabled(kind):
        return []
    customer_id = (event.data or {}).get("customer_id") or ""
    made = []
    targets = [(Channel.EMAIL, email)]
    if prefs.sms_enabled:
        targets.append((Channel.SMS, phone))
    for channel, recipient in targets:
        if not recipient:
            continue
        row = notification_queue(
            merchant_id=event.merchant_id,
            kind=kind,
            channel=channel,
            recipient=recipient,
            customer_id=customer_id,
            object_type=object_type,
            object_id=object_id,
            event_id=event.id,
            dedupe_key=dedupe_key,
            context=context,
        )
        if row is not None:
            made.append(row)
    return made


def payment_context(data: dict) -> dict:
    return {
        "payment_id": data.get("id"),
        "external_id": data.get("external_id"),
        "amount": data.get("amount"),
        "currency": data.get("currency"),
        "card_brand": data.get("card_brand") or "",
        "card_last_four": (data.get("card_last_four") or "")[-4:],
        "description": data.get("description") or "",
        "customer_name": data.get("customer_name") or "",
        "paid_at": data.get("processed_at") or data.get("created_at"),
        "subscription_id": data.get("subscription_id"),
    }


def _from_payment_captured(data: dict):
    if data.get("status") not in ("captured",) or not data.get("id"):
        return None
    context = payment_context(data)
    if data.get("captured_amount"):
        context["amount"] = data["captured_amount"]
    return Kind.PAYMENT_RECEIPT, "payment", str(data["id"]), f"payment:{data['id']}", context


def _from_payment_refunded(data: dict):
    done = [r for r in data.get("refunds") or [] if r.get("status") == "succeeded"]
    if not done or not data.get("id"):
        return None
    refund = max(done, key=lambda r: (r.get("processed_at") or "", r.get("created_at") or ""))
    context = payment_context(data)
    context.update(
        {
            "refund_id": refund.get("id"),
            "refund_amount": refund.get("amount"),
            "refund_reason": refund.get("reason") or "",
            "refunded_at": refund.get("processed_at") or refund.get("created_at"),
            "refunded_total": data.get("refunded_amount"),
            "fully_refunded": data.get("status") == "refunded",
        }
    )
    return Kind.REFUND_RECEIPT, "refund", str(refund.get("id")), f"refund:{refund.get('id')}", context


def subscription_context(data: dict) -> dict:
    method = data.get("payment_method") or {}
    return {
        "subscription_id": data.get("id"),
        "external_id": data.get("external_id"),
        "plan_id": data.get("plan_id"),
        "amount": data.get("amount"),
        "currency": data.get("currency"),
        "billing_cycle": data.get("billing_cycle"),
        "card_brand": method.get("card_brand") or "",
        "card_last_four": (method.get("card_last_four") or "")[-4:],
        "next_billing_date": data.get("next_billing_date"),
        "failure_count": data.get("failure_count") or 0,
        "customer_name": data.get("customer_name") or "",
    }


def _from_subscription_payment_failed(data: dict):
    # The last failure cancels the subscription: the cancellation notice says it, not "we'll retry".
    if data.get("status") != "past_due" or not data.get("next_billing_date"):
        return None
    context = subscription_context(data)
    key = f"subscription:{data['id']}:failed:{data.get('failure_count')}:{data.get('next_billing_date')}"
    return Kind.PAYMENT_FAILED, "subscription", str(data["id"]), key, context


def _from_subscription_cancelled(data: dict):
    # Only the cancellation the retries caused (a merchant's own cancel is the merchant's to tell).
    if data.get("status") != "cancelled" or not data.get("failure_count"):
        return None
    context = subscription_context(data)
    context["cancelled_at"] = data.get("cancelled_at")
    return Kind.SUBSCRIPTION_CANCELLED, "subscription", str(data["id"]), f"subscription:{data['id']}:cancelled", context


_EVENT_BUILDERS = {
    "payment.captured": _from_payment_captured,
    "payment.refunded": _from_payment_refunded,
    "payment.partially_refunded": _from_payment_refunded,
    "subscription.payment_failed": _from_subscription_payment_failed,
    "subscription.cancelled": _from_subscription_cancelled,
}
