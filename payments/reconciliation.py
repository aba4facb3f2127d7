"""Ledger reconciliation: EasyPay's payments compared with the processor's own transaction list.

``ledger_reconcile`` lists every transaction the processor has for a window (its settled batches
and its unsettled list), matches each charge to a :class:`Payment` (by processor transaction id,
else by ``reference``, which charges carry as ``invoiceNumber``) and reports what differs:

* orphan charges the processor has and EasyPay does not (report only: a payment is never invented);
* status mismatches and missing ``settled_at``: fixed through ``payment_refresh_from_processor``,
  which applies the processor's view but never moves a payment backwards;
* amount mismatches (processor settle/auth amount vs captured/authorized amount): report only;
* payments whose processor transaction id the processor does not know: report only;
* refund totals per payment at the processor vs ``refunded_amount``: report only.

No row lock or transaction is held across a processor call: the listing is read first, the
comparison is done on fresh reads, and each fix is the refresh service's own lock-call-lock cycle.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings

from payments import services
from payments.gateways import GatewayError, get_gateway
from payments.gateways.base import TransactionDetails, TransactionState
from payments.models import Payment, PaymentStatus, Refund

logger = logging.getLogger("easypay.payments")

# Payment statuses that agree with a processor status mapped to CAPTURED.
COMPATIBLE = {PaymentStatus.CAPTURED: set(services.MONEY_STATUSES)}


@dataclass
class LedgerReport:
    window_start: datetime
    window_end: datetime
    fix: bool
    processor_transactions: int = 0
    charges: int = 0
    refunds: int = 0
    voids: int = 0
    matched: int = 0
    payments_checked: int = 0
    orphans: list[dict[str, Any]] = field(default_factory=list)
    status_mismatches: list[dict[str, Any]] = field(default_factory=list)
    missing_settlements: list[dict[str, Any]] = field(default_factory=list)
    amount_mismatches: list[dict[str, Any]] = field(default_factory=list)
    unknown_at_processor: list[dict[str, Any]] = field(default_factory=list)
    refund_mismatches: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    FINDINGS = (
        "orphans",
        "status_mismatches",
        "missing_settlements",
        "amount_mismatches",
        "unknown_at_processor",
        "refund_mismatches",
    )

    @property
    def mismatch_count(self) -> int:
        return sum(len(getattr(self, name)) for name in self.FINDINGS)

    @property
    def fixed_count(self) -> int:
        return sum(1 for name in self.FINDINGS for item in getattr(self, name) if item.get("fixed"))

    @property
    def unfixed_count(self) -> int:
        return self.mismatch_count - self.fixed_count + len(self.errors)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["window_start"] = self.window_start.isoformat()
        data["window_end"] = self.window_end.isoformat()
        data["summary"] = {
            "mismatches": self.mismatch_count,
            "fixed": self.fixed_count,
            "unfixed": self.unfixed_count,
            **{name: len(getattr(self, name)) for name in self.FINDINGS},
            "errors": len(self.errors),
        }
        return data


def _window(day: date | None) -> tuple[datetime, datetime]:
    if day is not None:
        start = datetime.combine(day, time.min, tzinfo=UTC)
        return start, start + timedelta(days=1)
    end = datetime.now(UTC)
    days = settings.PAYMENTS_LEDGER_WINDOW_DAYS
    return end - timedelta(days=days), end


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def _in_window(details: TransactionDetails, start: datetime, end: datetime) -> bool:
    return details.submitted_at is None or start <= details.submitted_at < end


def _processor_listing(start: datetime, end: datetime) -> list[TransactionDetails]:
    """Full details of every processor transaction that matters for the window.

    Charges submitted in the window, plus every refund or void submitted since its start (a refund
    of a charge in the window comes after the charge, possibly after the window). Batches are read
    from the window's start to now, since a charge can settle days after it was submitted.
    """
    gateway = get_gateway()
    now = datetime.now(UTC)
    summaries: dict[str, TransactionDetails] = {}
    for batch in gateway.settled_batches(first=start, last=max(now, end) + timedelta(minutes=5)):
        for summary in gateway.batch_transactions(batch_id=batch.batch_id):
            summaries.setdefault(summary.transaction_id, summary)
    for summary in gateway.unsettled_transactions():
        summaries.setdefault(summary.transaction_id, summary)
    listing = []
    for trans_id, summary in summaries.items():
        if summary.submitted_at is not None and summary.submitted_at < start:
            continue
        if not _in_window(summary, start, end) and summary.state is not TransactionState.REFUNDED:
            continue  # after the window only refunds matter (a summary carries no kind: its state tells)
        details = gateway.transaction_details(transaction_id=trans_id)
        if details is not None:
            listing.append(details)
    return listing


def _kind(details: TransactionDetails) -> str:
    if details.kind is None:  # a summary: only a refund has a refund's state
        return "charge" if details.state is not TransactionState.REFUNDED else "other"
    return details.kind.value


def _payment_ref(payment: Payment) -> dict[str, Any]:
    return {
        "payment_id": str(payment.pk),
        "external_id": payment.external_id,
        "merchant_id": str(payment.merchant_id),
        "reference": payment.reference,
        "processor_transaction_id": payment.processor_transaction_id,
    }


def _status_agrees(payment: Payment, details: TransactionDetails) -> bool:
    target = services.STATUS_FOR_STATE.get(details.state)
    if target is None:
        return True  # a processor status we do not map: nothing to compare against
    return payment.status in COMPATIBLE.get(target, {target})


def _needs_settlement(payment: Payment, details: TransactionDetails) -> bool:
    settled = details.settled and details.state is TransactionState.CAPTURED
    return settled and payment.status in services.MONEY_STATUSES and payment.settled_at is None


def _refresh(payment: Payment, report: LedgerReport) -> Payment | None:
    try:
        return services.payment_refresh_from_processor(payment=payment)
    except GatewayError as exc:
        logger.warning("ledger reconcile: refresh of payment %s failed: %s", payment.pk, exc)
        report.errors.append({"payment_id": str(payment.pk), "error": str(exc)})
        return None


def _check_charge(payment: Payment, details: TransactionDetails, report: LedgerReport) -> None:
    base = {**_payment_ref(payment), "transaction_id": details.transaction_id, "processor_status": details.status}
    status_ok = _status_agrees(payment, details)
    settle_missing = _needs_settlement(payment, details)
    before_status, before_settled = payment.status, payment.settled_at
    if (not status_ok or settle_missing) and report.fix:
        refreshed = _refresh(payment, report)
        if refreshed is not None:
            payment = refreshed
    if not status_ok:
        report.status_mismatches.append(
            {
                **base,
                "easypay_status": before_status,
                "status_after": payment.status,
                "fixed": _status_agrees(payment, details),
            }
        )
    if settle_missing:
        report.missing_settlements.append(
            {
                **base,
                "settled_at": payment.settled_at.isoformat() if payment.settled_at else None,
                "fixed": before_settled is None and payment.settled_at is not None,
            }
        )
    _check_amount(payment, details, base, report)


def _check_amount(payment: Payment, details: TransactionDetails, base: dict, report: LedgerReport) -> None:
    target = services.STATUS_FOR_STATE.get(details.state)
    theirs: Decimal | None
    ours: Decimal | None
    if target == PaymentStatus.CAPTURED and payment.status in services.MONEY_STATUSES:
        theirs, ours, field_name = details.settle_amount, payment.captured_amount, "captured_amount"
    elif target == PaymentStatus.AUTHORIZED and payment.status == PaymentStatus.AUTHORIZED:
        theirs, ours, field_name = details.auth_amount, payment.authorized_amount, "authorized_amount"
    else:
        return
    if theirs is None or ours is None or theirs == ours:
        return
    report.amount_mismatches.append(
        {
            **base,
            "field": field_name,
            "processor_amount": _money(theirs),
            "easypay_amount": _money(ours),
            "currency": payment.currency,
            "fixed": False,
        }
    )


def _check_refunds(payment: Payment, refunds: list[TransactionDetails], report: LedgerReport) -> None:
    in_flight = payment.refunds.filter(status__in=[Refund.Status.PENDING, Refund.Status.UNKNOWN]).exists()
    if in_flight or payment.pending_operation:
        return  # a refund being asked right now: the totals may legitimately differ for a moment
    theirs = sum((r.settle_amount or r.auth_amount or Decimal(0) for r in refunds), Decimal(0))
    if theirs == payment.refunded_amount:
        return
    report.refund_mismatches.append(
        {
            **_payment_ref(payment),
            "processor_refunded": _money(theirs),
            "easypay_refunded": _money(payment.refunded_amount),
            "currency": payment.currency,
            "processor_refund_ids": [r.transaction_id for r in refunds],
            "fixed": False,
        }
    )


def ledger_reconcile(*, day: date | None, fix: bool = True) -> LedgerReport:
    """Compare the processor's transactions of ``day`` (UTC; default the last 2 days) with EasyPay's.

    Raises ``GatewayError`` subclasses when the processor's listing cannot be read; a failure
    while fixing one payment is recorded in ``errors`` and the pass goes on.
    """
    start, end = _window(day)
    report = LedgerReport(window_start=start, window_end=end, fix=fix)
    listing = _processor_listing(start, end)
    report.processor_transactions = len(listing)

    charges: list[TransactionDetails] = []
    refunds_by_charge: dict[str, list[TransactionDetails]] = {}
    for details in listing:
        kind = _kind(details)
        if kind == "charge":
            if _in_window(details, start, end):
                charges.append(details)
        elif kind == "refund":
            report.refunds += 1
            if details.state is TransactionState.REFUNDED and details.ref_transaction_id:
                refunds_by_charge.setdefault(details.ref_transaction_id, []).append(details)
        if kind == "void" or details.state is TransactionState.VOIDED:
            report.voids += 1
    report.charges = len(charges)

    by_trans_id = {
        payment.processor_transaction_id: payment
        for payment in Payment.objects.filter(processor_transaction_id__in=[c.transaction_id for c in charges])
    }
    references = [c.invoice_number for c in charges if c.invoice_number and c.transaction_id not in by_trans_id]
    by_reference = {payment.reference: payment for payment in Payment.objects.filter(reference__in=references)}

    seen: dict[str, TransactionDetails] = {}  # payment id -> its charge
    for details in charges:
        payment = by_trans_id.get(details.transaction_id)
        if payment is None:
            candidate = by_reference.get(details.invoice_number or "")
            # A payment whose reply was lost has no transaction id yet; one that has another id
            # was charged twice (the second charge is an orphan, reported with its twin).
            if candidate is not None and not candidate.processor_transaction_id and str(candidate.pk) not in seen:
                payment = candidate
        if payment is None:
            twin = by_reference.get(details.invoice_number or "")
            report.orphans.append(
                {
                    "transaction_id": details.transaction_id,
                    "transaction_type": details.transaction_type,
                    "processor_status": details.status,
                    "amount": _money(details.settle_amount or details.auth_amount),
                    "invoice_number": details.invoice_number,
                    "submitted_at": details.submitted_at.isoformat() if details.submitted_at else None,
                    "same_reference_as_payment": str(twin.pk) if twin is not None else None,
                    "fixed": False,
                }
            )
            continue
        report.matched += 1
        seen[str(payment.pk)] = details
        _check_charge(payment, details, report)

    # EasyPay's side: every payment of the window that reached the processor.
    gateway = get_gateway()
    window_payments = Payment.objects.filter(created_at__gte=start, created_at__lt=end, processor_transaction_id__gt="")
    for payment in window_payments.order_by("created_at"):
        report.payments_checked += 1
        known = seen.get(str(payment.pk))
        if known is None:
            try:
                known = gateway.transaction_details(transaction_id=payment.processor_transaction_id)
            except GatewayError as exc:
                report.errors.append({"payment_id": str(payment.pk), "error": str(exc)})
                continue
            if known is None:
                report.unknown_at_processor.append(
                    {**_payment_ref(payment), "easypay_status": payment.status, "fixed": False}
                )
                continue
            # Known but outside the listing (submitted just outside the window): compare it too.
            _check_charge(payment, known, report)
        payment.refresh_from_db()
        _check_refunds(payment, refunds_by_charge.get(payment.processor_transaction_id, []), report)
    return report
