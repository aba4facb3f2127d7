"""Celery tasks of the payments app (names as in settings.CELERY_BEAT_SCHEDULE).

Each takes ids or nothing, re-reads the rows, and is safe to run twice or concurrently: every
state change goes through the services, which lock the payment and never move it backwards.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from core.idempotency import idempotency_purge as purge_records
from payments import services
from payments.gateways import GatewayError
from payments.inbound import tasks as inbound_tasks  # noqa: F401 (autodiscovery imports only payments.tasks)
from payments.models import Payment, Refund

logger = logging.getLogger("easypay.payments")


def _batch_size() -> int:
    return settings.PAYMENTS_RECONCILE_BATCH_SIZE


def _summary(payment: Payment, before: str, before_settled) -> dict:
    return {
        "payment_id": str(payment.pk),
        "external_id": payment.external_id,
        "from_status": before,
        "to_status": payment.status,
        "processor_transaction_id": payment.processor_transaction_id,
        "settled_at": payment.settled_at.isoformat() if payment.settled_at else None,
        "changed": before != payment.status or before_settled != payment.settled_at,
    }


def reconcile_pending_payments(*, on_date: date | None = None) -> dict:
    """Resolve payments (and refunds) whose processor reply was lost, older than the threshold."""
    cutoff = timezone.now() - timedelta(seconds=services.reconcile_after_seconds())
    stale_refunds = Refund.objects.filter(
        status__in=[Refund.Status.PENDING, Refund.Status.UNKNOWN], created_at__lte=cutoff
    ).values("payment_id")
    candidates = Payment.objects.filter(
        Q(status=Payment.Status.PENDING, created_at__lte=cutoff)
        | Q(pending_operation__gt="", updated_at__lte=cutoff)
        | Q(pk__in=stale_refunds)
    )
    if on_date is not None:
        candidates = candidates.filter(created_at__date=on_date)
    results, errors = [], []
    for payment in candidates.order_by("created_at")[: _batch_size()]:
        before, before_settled = payment.status, payment.settled_at
        try:
            payment = services.payment_reconcile(payment=payment)
        except GatewayError as exc:
            logger.warning("reconcile of payment %s failed: %s", payment.pk, exc)
            errors.append({"payment_id": str(payment.pk), "error": str(exc)})
            continue
        results.append(_summary(payment, before, before_settled))
    return {
        "checked": len(results) + len(errors),
        "fixed": [r for r in results if r["changed"]],
        "unchanged": [r["payment_id"] for r in results if not r["changed"]],
        "errors": errors,
    }


def sync_settlements(*, on_date: date | None = None) -> dict:
    """Set ``settled_at`` on captured payments the processor has settled (``payment.settled`` once)."""
    lookback = timedelta(days=settings.PAYMENTS_SETTLEMENT_LOOKBACK_DAYS)
    candidates = Payment.objects.filter(
        status__in=services.MONEY_STATUSES, settled_at__isnull=True, processor_transaction_id__gt=""
    )
    if on_date is not None:
        start = timezone.make_aware(datetime.combine(on_date, time.min))
        candidates = candidates.filter(created_at__gte=start, created_at__lt=start + timedelta(days=1))
    else:
        candidates = candidates.filter(created_at__gte=timezone.now() - lookback)
    settled, errors = [], []
    for payment in candidates.order_by("created_at")[: _batch_size()]:
        try:
            payment = services.payment_reconcile(payment=payment, settlement=True)
        except GatewayError as exc:
            errors.append({"payment_id": str(payment.pk), "error": str(exc)})
            continue
        if payment.settled_at is not None:
            settled.append({"payment_id": str(payment.pk), "settled_at": payment.settled_at.isoformat()})
    return {"settled": settled, "errors": errors}


@shared_task(name="payments.tasks.reconcile_pending")
def reconcile_pending() -> dict:
    return reconcile_pending_payments()


@shared_task(name="payments.tasks.settlement_sync")
def settlement_sync() -> dict:
    return sync_settlements()


@shared_task(name="payments.tasks.ledger_reconcile")
def ledger_reconcile() -> dict:
    """Daily: compare the last days' processor transactions with EasyPay's payments, fix what can be fixed."""
    from payments.reconciliation import ledger_reconcile as run

    report = run(day=None, fix=True)
    if report.mismatch_count or report.errors:
        logger.warning("ledger reconcile: %s", report.to_dict()["summary"])
    return report.to_dict()["summary"]


@shared_task(name="payments.tasks.idempotency_purge")
def idempotency_purge() -> int:
    return purge_records()


@shared_task(
    name="payments.tasks.payment_reconcile",
    autoretry_for=(GatewayError,),
    retry_backoff=30,
    retry_backoff_max=1800,
    max_retries=8,
)
def payment_reconcile(payment_id: str) -> str | None:
    payment = Payment.objects.filter(pk=payment_id).first()
    if payment is None:
        return None
    return services.payment_reconcile(payment=payment).status
