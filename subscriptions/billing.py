"""The recurring-billing pass: charge every due subscription once per period, however often it runs.

How a period is never charged twice, even with several passes at once or a crash half-way:

1. **Claim** (short transaction): due rows are read in primary-key order, ``batch_size`` at a time,
   with ``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite runs the same code serially), and
   each is claimed by inserting a ``pending`` :class:`BillingAttempt`. The partial unique constraint
   "one pending-or-succeeded attempt per (subscription, period)" makes a second claimer fail.
2. **Charge** (no transaction, no lock): ``payments.services.payment_create`` with an ``external_id``
   derived from (subscription, period, attempt number). A payment's ``external_id`` is unique per
   merchant, so a re-run of the same attempt finds that payment instead of charging again.
3. **Record** (short transaction, rows locked): the attempt's outcome and the subscription's new
   state, with its events.

A pending attempt whose lease (``claimed_at``) is older than ``SUBSCRIPTION_STALE_ATTEMPT_MINUTES``
belongs to a worker that died; the next pass adopts its payment if one exists, else charges it again
with the same ``external_id``.

Outcomes: approved -> next period (anchored), ``active``; declined -> ``past_due`` with retries after
``SUBSCRIPTION_RETRY_DAYS``, then ``cancelled``; hard decline (expired, invalid, lost card) ->
``cancelled`` at once; processor outage or error -> nothing counted, still due for the next pass;
unknown outcome (pending, held) -> the attempt stays pending until the payment is reconciled.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from core.errors import EasyPayError, ServiceUnavailable
from payments.models import PaymentStatus
from webhooks.services import event_record

from . import cycles
from .metrics import BILLING_TOTAL
from .models import BillingAttempt, Subscription
from .payloads import subscription_payload
from .states import mark_cancelled

logger = logging.getLogger("easypay.subscriptions.billing")

BILLABLE = (Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE)

# Payment statuses after payment_create, grouped by what they mean for the period.
_PAID = frozenset(
    {PaymentStatus.CAPTURED, PaymentStatus.AUTHORIZED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}
)
_DECLINED = frozenset({PaymentStatus.DECLINED})
# processor error: nothing charged, not the customer's fault
_FAILED = frozenset({PaymentStatus.FAILED, PaymentStatus.VOIDED})
# anything else ("pending", "held"): the outcome is not known yet; the reconciler settles it.


@dataclass
class BillingReport:
    date: date
    due: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    errors: int = 0
    recovered: int = 0
    aborted: bool = False
    duration_seconds: float = 0.0
    _started: float = field(default_factory=time.monotonic, repr=False)

    def as_dict(self) -> dict:
        out = asdict(self)
        out.pop("_started", None)
        out["date"] = self.date.isoformat()
        return out


class _CircuitOpen(Exception):
    """The processor refused locally (circuit open): stop the pass, nothing more can be charged."""


def payment_external_id(*, subscription_id, period_start: date, attempt_number: int) -> str:
    return f"sub_{subscription_id.hex}_{period_start:%Y%m%d}_{attempt_number}"


def subscription_billing_run(*, today: date, batch_size: int = 500) -> BillingReport:
    """Bill every active or past_due subscription whose next_billing_date is on or before ``today``."""
    report = BillingReport(date=today)
    try:
        _recover_stale_attempts(today=today, report=report)
        after = None
        batch_no = 0
        while True:
            claimed, after = _claim_batch(today=today, after=after, batch_size=batch_size, report=report)
            if after is None:
                break
            batch_no += 1
            for index, attempt_id in enumerate(claimed):
                try:
                    _bill_attempt(attempt_id=attempt_id, today=today, report=report)
                except _CircuitOpen:
                    _release_claims(claimed[index + 1 :], reason="processor_unavailable", report=report)
                    report.aborted = True
                    logger.error("subscription billing aborted: processor circuit open", extra=report.as_dict())
                    return report
                except BaseException:
                    # Interrupted (time limit, shutdown): give back the claims not yet sent so the
                    # next pass bills them at once; the one in flight is re-checked after its lease.
                    _release_claims(claimed[index + 1 :], reason="interrupted", report=report)
                    report.aborted = True
                    raise
            logger.info("subscription billing progress", extra={"batch": batch_no, **report.as_dict()})
    finally:
        report.duration_seconds = round(time.monotonic() - report._started, 3)
    logger.info("subscription billing finished", extra=report.as_dict())
    return report


# --- 1. claim -----------------------------------------------------------------------------------


def _claim_batch(*, today: date, after, batch_size: int, report: BillingReport):
    """Claim up to ``batch_size`` due subscriptions after ``after`` (keyset). -> (attempt ids, last pk)."""
    skip_locked = connection.features.has_select_for_update_skip_locked
    claimed: list = []
    with transaction.atomic():
        qs = Subscription.objects.filter(status__in=BILLABLE, next_billing_date__lte=today)
        if after is not None:
            qs = qs.filter(pk__gt=after)
        rows = list(
            qs.order_by("pk")
            .select_for_update(skip_locked=skip_locked)
            .only("id", "status", "billing_cycle", "start_date", "next_billing_date", "amount", "currency")[:batch_size]
        )
        if not rows:
            return claimed, None
        periods = {sub.pk: _period_to_bill(sub) for sub in rows}
        numbers = {
            (row["subscription_id"], row["period_start"]): row["latest"]
            for row in BillingAttempt.objects.filter(
                subscription_id__in=[sub.pk for sub in rows], period_start__in=set(periods.values())
            )
            .values("subscription_id", "period_start")
            .annotate(latest=Max("attempt_number"))
        }
        now = timezone.now()
        for sub in rows:
            report.due += 1
            period_start = periods[sub.pk]
            number = numbers.get((sub.pk, period_start), 0) + 1
            attempt = BillingAttempt(
                subscription_id=sub.pk,
                period_start=period_start,
                period_end=cycles.billing_date_after(sub.start_date, sub.billing_cycle, period_start),
                attempt_number=number,
                status=BillingAttempt.Status.PENDING,
                amount=sub.amount,
                currency=sub.currency,
                payment_external_id=payment_external_id(
                    subscription_id=sub.pk, period_start=period_start, attempt_number=number
                ),
                claimed_at=now,
            )
            try:
                with transaction.atomic():
                    attempt.save(force_insert=True)
            except IntegrityError:
                # Another pass holds this period (in flight) or has already been paid for it.
                report.skipped += 1
                BILLING_TOTAL.labels(result="skipped").inc()
                continue
            claimed.append(attempt.pk)
    return claimed, rows[-1].pk


def _period_to_bill(sub: Subscription) -> date:
    """The period a due subscription owes: its next billing date, or, while past_due, the declined one."""
    if sub.status == Subscription.Status.PAST_DUE:
        last = (
            BillingAttempt.objects.filter(subscription_id=sub.pk)
            .order_by("-created_at")
            .values_list("period_start", flat=True)
            .first()
        )
        if last is not None:
            return last
    return sub.next_billing_date


def _release_claims(attempt_ids, *, reason: str, report: BillingReport) -> None:
    """Give back claims that will not be charged in this pass (nothing was sent for them)."""
    if not attempt_ids:
        return
    now = timezone.now()
    released = BillingAttempt.objects.filter(pk__in=attempt_ids, status=BillingAttempt.Status.PENDING).update(
        status=BillingAttempt.Status.FAILED, failure_reason=reason, completed_at=now
    )
    report.errors += released
    BILLING_TOTAL.labels(result=reason).inc(released)


# --- 2. charge ----------------------------------------------------------------------------------


def _bill_attempt(*, attempt_id, today: date, report: BillingReport) -> None:
    from payments.services import payment_create

    # Renew the lease just before charging, so a long batch is not mistaken for a dead worker's; an
    # attempt finished meanwhile (by a recovering pass) is left alone.
    if not BillingAttempt.objects.filter(pk=attempt_id, status=BillingAttempt.Status.PENDING).update(
        claimed_at=timezone.now()
    ):
        report.skipped += 1
        BILLING_TOTAL.labels(result="skipped").inc()
        return
    attempt = BillingAttempt.objects.select_related("subscription", "subscription__merchant").get(pk=attempt_id)
    sub = attempt.subscription
    if sub.status not in BILLABLE:
        # Paused or cancelled between the claim and now: never charge it.
        _finish_unbilled(attempt, reason="not_billable", message=f"subscription is {sub.status}")
        report.skipped += 1
        BILLING_TOTAL.labels(result="skipped").inc()
        return
    method = sub.payment_method or {}
    source: dict = {}
    if method.get("type") == "test_token":
        source["card_token"] = method.get("token")
    elif method.get("type") == "customer_profile":
        source["customer_profile_id"] = method.get("customer_profile_id")
        source["payment_profile_id"] = method.get("payment_profile_id")
    else:
        _finish_unbilled(attempt, reason="no_payment_method", message="no usable payment method stored")
        report.errors += 1
        BILLING_TOTAL.labels(result="error").inc()
        return
    try:
        payment = payment_create(
            merchant=sub.merchant,
            is_test=sub.is_test,
            amount=attempt.amount,
            currency=attempt.currency,
            capture=True,
            customer_id=sub.customer_id,
            customer_email=sub.customer_email,
            customer_name=sub.customer_name,
            customer_phone=sub.customer_phone,
            description=f"Subscription {sub.plan_id} {attempt.period_start.isoformat()}"[:255],
            metadata={
                "subscription_id": str(sub.pk),
                "period_start": attempt.period_start.isoformat(),
                "attempt_number": attempt.attempt_number,
            },
            external_id=attempt.payment_external_id,
            subscription=sub,
            **source,
        ).payment
    except ServiceUnavailable:
        # Refused locally before anything was sent: not a decline, the period stays due.
        _finish_unbilled(attempt, reason="processor_unavailable", message="payment processor unavailable")
        report.errors += 1
        BILLING_TOTAL.labels(result="processor_unavailable").inc()
        raise _CircuitOpen from None
    except (IntegrityError, EasyPayError) as exc:
        # Most likely the payment for this external_id already exists (a re-run): adopt it.
        payment = _existing_payment(attempt)
        if payment is None:
            logger.warning(
                "subscription charge refused", extra={"attempt_id": str(attempt.pk), "error": type(exc).__name__}
            )
            _finish_unbilled(attempt, reason="error", message=str(exc)[:255])
            report.errors += 1
            BILLING_TOTAL.labels(result="error").inc()
            return
    except Exception:
        # Unknown whether a payment was created: keep the attempt pending; once its lease is stale
        # a later pass adopts the payment (same external_id) or charges it then.
        logger.exception("subscription charge crashed", extra={"attempt_id": str(attempt.pk)})
        report.errors += 1
        BILLING_TOTAL.labels(result="error").inc()
        return
    _record_outcome(
        attempt_id=attempt.pk, subscription_id=attempt.subscription_id, payment=payment, today=today, report=report
    )


def _existing_payment(attempt: BillingAttempt):
    from payments.models import Payment

    return Payment.objects.filter(
        merchant_id=attempt.subscription.merchant_id, external_id=attempt.payment_external_id
    ).first()


def _finish_unbilled(attempt: BillingAttempt, *, reason: str, message: str = "") -> None:
    BillingAttempt.objects.filter(pk=attempt.pk, status=BillingAttempt.Status.PENDING).update(
        status=BillingAttempt.Status.FAILED,
        failure_reason=reason,
        failure_message=message[:255],
        completed_at=timezone.now(),
    )


# --- 3. record ----------------------------------------------------------------------------------


def _hard_decline(reason_code: str | None) -> bool:
    return bool(reason_code) and str(reason_code) in {
        str(code) for code in settings.SUBSCRIPTION_HARD_DECLINE_REASON_CODES
    }


def _record_outcome(*, attempt_id, subscription_id, payment, today: date, report: BillingReport) -> None:
    status = str(payment.status)
    with transaction.atomic():
        sub = Subscription.objects.select_for_update().get(pk=subscription_id)
        attempt = BillingAttempt.objects.select_for_update().get(pk=attempt_id)
        if attempt.status != BillingAttempt.Status.PENDING:
            report.skipped += 1  # recorded meanwhile by another pass (crash recovery)
            return
        attempt.payment = payment
        reason_code = str(getattr(payment, "processor_reason_code", "") or "")
        attempt.processor_reason_code = reason_code[:16]
        now = timezone.now()

        if status in _PAID:
            attempt.status = BillingAttempt.Status.SUCCEEDED
            attempt.completed_at = now
            attempt.save()
            sub.current_period_start = attempt.period_start
            sub.current_period_end = attempt.period_end
            _learn_card(sub, payment)
            if sub.status in BILLABLE:
                sub.status = Subscription.Status.ACTIVE
                sub.failure_count = 0
                sub.next_billing_date = attempt.period_end
            sub.save()
            _event(sub, "subscription.payment_succeeded")
            report.succeeded += 1
            BILLING_TOTAL.labels(result="succeeded").inc()
            return

        if status in _DECLINED:
            hard = _hard_decline(reason_code)
            attempt.status = BillingAttempt.Status.FAILED
            attempt.failure_reason = "hard_decline" if hard else "declined"
            attempt.failure_message = (getattr(payment, "processor_response_message", "") or "")[:255]
            attempt.completed_at = now
            attempt.save()
            report.failed += 1
            BILLING_TOTAL.labels(result="hard_declined" if hard else "declined").inc()
            if sub.status not in BILLABLE:
                return  # paused or cancelled while the charge was in flight: leave it so
            was_active = sub.status == Subscription.Status.ACTIVE
            sub.failure_count += 1
            retry_days = list(settings.SUBSCRIPTION_RETRY_DAYS)
            if hard or sub.failure_count > len(retry_days):
                mark_cancelled(sub)
                sub.save()
                _event(sub, "subscription.payment_failed")
                _event(sub, "subscription.cancelled")
                return
            sub.status = Subscription.Status.PAST_DUE
            sub.next_billing_date = today + timedelta(days=int(retry_days[sub.failure_count - 1]))
            sub.save()
            _event(sub, "subscription.payment_failed")
            if was_active:
                _event(sub, "subscription.past_due")
            return

        if status in _FAILED:
            # The processor erred; nothing was charged and it is not the customer's doing.
            attempt.status = BillingAttempt.Status.FAILED
            attempt.failure_reason = "processor_error"
            attempt.failure_message = (getattr(payment, "processor_response_message", "") or "")[:255]
            attempt.completed_at = now
            attempt.save()
            report.errors += 1
            BILLING_TOTAL.labels(result="processor_error").inc()
            return

        # pending / held: the outcome is not known yet. The attempt stays pending (the period stays
        # claimed, so nothing charges it again) and is re-checked once the payment is reconciled.
        attempt.claimed_at = now
        attempt.save(update_fields=["payment", "processor_reason_code", "claimed_at", "updated_at"])
        report.errors += 1
        BILLING_TOTAL.labels(result="pending").inc()


def _learn_card(sub: Subscription, payment) -> None:
    """A live Accept.js nonce does not reveal the card; the first approved charge tells its last four."""
    method = dict(sub.payment_method or {})
    last_four = getattr(payment, "card_last_four", "") or ""
    if method and not method.get("card_last_four") and last_four:
        method["card_last_four"] = last_four
        method["card_brand"] = method.get("card_brand") or (getattr(payment, "card_brand", "") or None)
        sub.payment_method = method


def _event(sub: Subscription, event_type: str) -> None:
    event_record(merchant_id=sub.merchant_id, event_type=event_type, data=subscription_payload(sub))


# --- crash recovery -----------------------------------------------------------------------------


def _recover_stale_attempts(*, today: date, report: BillingReport) -> None:
    """Re-check pending attempts whose worker died (or whose payment's outcome was unknown)."""
    cutoff = timezone.now() - timedelta(minutes=settings.SUBSCRIPTION_STALE_ATTEMPT_MINUTES)
    stale = BillingAttempt.objects.filter(status=BillingAttempt.Status.PENDING, claimed_at__lt=cutoff)
    for attempt_id, claimed_at in stale.values_list("pk", "claimed_at").iterator(chunk_size=500):
        # Take the lease: of two passes recovering at once, only one wins this conditional update.
        if not BillingAttempt.objects.filter(
            pk=attempt_id, status=BillingAttempt.Status.PENDING, claimed_at=claimed_at
        ).update(claimed_at=timezone.now()):
            continue
        report.recovered += 1
        attempt = BillingAttempt.objects.select_related("subscription", "payment").get(pk=attempt_id)
        payment = attempt.payment or _existing_payment(attempt)
        if payment is not None:
            _record_outcome(
                attempt_id=attempt_id,
                subscription_id=attempt.subscription_id,
                payment=payment,
                today=today,
                report=report,
            )
            continue
        try:
            _bill_attempt(attempt_id=attempt_id, today=today, report=report)
        except _CircuitOpen:
            return
