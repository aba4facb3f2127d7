"""Writes for subscriptions: create, update, pause, resume, cancel (the billing pass is in ``billing``).

Every state change locks the subscription row (``select_for_update``) and records its event in the
same transaction. A live-mode card is saved at Authorize.Net (a CIM customer + payment profile)
before any transaction opens: no row lock is ever held across a call to the processor.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import CardDeclined, InvalidState, ProcessorError, ServiceUnavailable, ValidationFailed
from webhooks.services import event_record

from . import cycles
from .models import Subscription
from .payloads import subscription_payload
from .states import mark_cancelled


def utc_today() -> date:
    """Billing dates are UTC calendar dates, never the server's local date."""
    return timezone.now().date()


def payment_method_build(*, card_token: str, is_test: bool, customer_id: str, customer_email: str = "") -> dict:
    """The stored way to charge the customer again: never a card number.

    Test mode keeps one of the documented test tokens. Live mode turns the Accept.js nonce (usable
    once) into an Authorize.Net customer profile with a payment profile, charged on every renewal.
    """
    from payments.gateways.tokens import TEST_TOKENS, looks_like_test_token

    if not isinstance(card_token, str) or not card_token.strip():
        raise ValidationFailed(details={"card_token": ["This field may not be blank."]})
    if is_test:
        card = TEST_TOKENS.get(card_token)
        if card is None:
            raise ValidationFailed(
                details={
                    "card_token": [f"Test mode takes one of the test card tokens: {', '.join(sorted(TEST_TOKENS))}."]
                }
            )
        return {
            "type": "test_token",
            "token": card_token,
            "card_last_four": card.last_four,
            "card_brand": card.brand,
            "card_expiry": card.expiry,  # YYYY-MM, for the expiring-card notice
        }
    if looks_like_test_token(card_token):
        raise ValidationFailed(details={"card_token": ["Test card tokens are refused by a live-mode key."]})
    return _customer_profile_create(card_token=card_token, customer_id=customer_id, customer_email=customer_email)


def _customer_profile_create(*, card_token: str, customer_id: str, customer_email: str) -> dict:
    from payments.gateways import get_gateway
    from payments.gateways.base import GatewayUnavailable, InvalidPaymentSource, Outcome, Refusal

    try:
        result = get_gateway().customer_profile_create(
            customer_id=customer_id, email=customer_email, card_token=card_token, is_test=False
        )
    except GatewayUnavailable:
        raise ServiceUnavailable("The payment processor is temporarily unavailable; try again shortly.") from None
    except InvalidPaymentSource as exc:
        raise ValidationFailed(details={"card_token": [str(exc)]}) from None
    if result.outcome is Outcome.APPROVED and result.customer_profile_id and result.payment_profile_id:
        return {
            "type": "customer_profile",
            "customer_profile_id": result.customer_profile_id,
            "payment_profile_id": result.payment_profile_id,
            "card_last_four": result.card_last_four,
            "card_brand": result.card_brand,
        }
    if result.outcome is Outcome.DECLINED:
        raise CardDeclined("The card was declined when it was saved for recurring billing.")
    if result.refusal is Refusal.INVALID_PAYMENT_SOURCE:  # the caller's input, so a 400
        raise ValidationFailed(details={"card_token": [result.message or "The card token is invalid or expired."]})
    raise ProcessorError("The payment processor could not save the card.", details={"processor": result.message})


def subscription_create(
    *,
    merchant,
    is_test: bool,
    customer_id: str,
    plan_id: str,
    amount: Decimal,
    currency: str,
    billing_cycle: str,
    card_token: str,
    start_date: date | None = None,
    metadata: dict[str, Any] | None = None,
    customer_email: str = "",
    customer_name: str = "",
    customer_phone: str = "",
    external_id: str | None = None,
    today: date | None = None,
) -> Subscription:
    today = today or utc_today()
    start = start_date or today
    if start < today:
        raise ValidationFailed(details={"start_date": [f"Must be today ({today.isoformat()}, UTC) or later."]})
    if billing_cycle not in cycles.CYCLES:
        raise ValidationFailed(details={"billing_cycle": [f"Must be one of: {', '.join(cycles.CYCLES)}."]})
    if external_id and Subscription.objects.filter(merchant=merchant, external_id=external_id).exists():
        # Checked before a live card is saved at the processor; the unique constraint below is the guard.
        raise ValidationFailed(details={"external_id": ["A subscription with this external_id already exists."]})
    payment_method = payment_method_build(
        card_token=card_token, is_test=is_test, customer_id=customer_id, customer_email=customer_email
    )
    pk = uuid.uuid4()
    subscription = Subscription(
        id=pk,
        merchant=merchant,
        external_id=external_id or f"sub_{pk.hex}",
        customer_id=customer_id,
        customer_email=customer_email or "",
        customer_name=customer_name or "",
        customer_phone=customer_phone or "",
        plan_id=plan_id,
        status=Subscription.Status.ACTIVE,
        billing_cycle=billing_cycle,
        amount=amount,
        currency=currency,
        start_date=start,
        next_billing_date=start,
        payment_method=payment_method,
        metadata=metadata or {},
        is_test=is_test,
    )
    try:
        with transaction.atomic():
            subscription.save(force_insert=True)
            event_record(
                merchant_id=merchant.pk, event_type="subscription.created", data=subscription_payload(subscription)
            )
    except IntegrityError:
        raise ValidationFailed(
            details={"external_id": ["A subscription with this external_id already exists."]}
        ) from None
    return subscription


def _locked(subscription_id) -> Subscription:
    return Subscription.objects.select_for_update().get(pk=subscription_id)


def subscription_update(*, subscription: Subscription, data: dict[str, Any]) -> Subscription:
    """Change what a merchant may change: amount, plan_id, metadata, the card, customer email/name."""
    if subscription.status == Subscription.Status.CANCELLED:
        raise InvalidState("A cancelled subscription cannot be changed.")
    payment_method = None
    if "card_token" in data:
        payment_method = payment_method_build(
            card_token=data["card_token"],
            is_test=subscription.is_test,
            customer_id=subscription.customer_id,
            customer_email=data.get("customer_email", subscription.customer_email),
        )
    with transaction.atomic():
        sub = _locked(subscription.pk)
        if sub.status == Subscription.Status.CANCELLED:
            raise InvalidState("A cancelled subscription cannot be changed.")
        changed = []
        for field in ("amount", "plan_id", "metadata", "customer_email", "customer_name", "customer_phone"):
            if field in data:
                setattr(sub, field, data[field])
                changed.append(field)
        if payment_method is not None:
            sub.payment_method = payment_method
            changed.append("payment_method")
        sub.save(update_fields=[*changed, "updated_at"])
        event_record(merchant_id=sub.merchant_id, event_type="subscription.updated", data=subscription_payload(sub))
    return sub


def subscription_pause(*, subscription: Subscription) -> Subscription:
    with transaction.atomic():
        sub = _locked(subscription.pk)
        if sub.status not in (Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE):
            raise InvalidState(f"Only an active or past_due subscription can be paused; this one is {sub.status}.")
        sub.status = Subscription.Status.PAUSED
        sub.paused_at = timezone.now()
        sub.save(update_fields=["status", "paused_at", "updated_at"])
        event_record(merchant_id=sub.merchant_id, event_type="subscription.paused", data=subscription_payload(sub))
    return sub


def resume_billing_date(*, subscription: Subscription, today: date) -> date:
    """The first anchored billing date on or after today, never inside a period already paid.

    Periods that passed while paused are not billed afterwards (no back-billing).
    """
    floor = today
    if subscription.current_period_end and subscription.current_period_end > floor:
        floor = subscription.current_period_end
    return cycles.billing_date_on_or_after(subscription.start_date, subscription.billing_cycle, floor)


def subscription_resume(*, subscription: Subscription, today: date | None = None) -> Subscription:
    today = today or utc_today()
    with transaction.atomic():
        sub = _locked(subscription.pk)
        if sub.status != Subscription.Status.PAUSED:
            raise InvalidState(f"Only a paused subscription can be resumed; this one is {sub.status}.")
        sub.status = Subscription.Status.ACTIVE
        sub.paused_at = None
        sub.failure_count = 0
        sub.next_billing_date = resume_billing_date(subscription=sub, today=today)
        sub.save(update_fields=["status", "paused_at", "failure_count", "next_billing_date", "updated_at"])
        event_record(merchant_id=sub.merchant_id, event_type="subscription.resumed", data=subscription_payload(sub))
    return sub


def subscription_cancel(*, subscription: Subscription) -> Subscription:
    """Cancel at once; the record stays, and it is never billed again."""
    with transaction.atomic():
        sub = _locked(subscription.pk)
        if sub.status == Subscription.Status.CANCELLED:
            raise InvalidState("This subscription is already cancelled.")
        mark_cancelled(sub)
        sub.save(update_fields=["status", "cancelled_at", "next_billing_date", "updated_at"])
        event_record(merchant_id=sub.merchant_id, event_type="subscription.cancelled", data=subscription_payload(sub))
    return sub


def subscription_billing_run(*, today: date, batch_size: int = 500):
    """The recurring-billing pass (see ``subscriptions.billing``)."""
    from .billing import subscription_billing_run as run

    return run(today=today, batch_size=batch_size)
