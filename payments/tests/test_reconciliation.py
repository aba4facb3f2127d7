"""Ledger reconciliation against the Authorize.Net emulator: EasyPay's payments vs the processor's list."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from payments.gateways import get_gateway
from payments.gateways.base import ChargeRequest
from payments.models import Payment, PaymentStatus
from payments.reconciliation import ledger_reconcile
from payments.tasks import sync_settlements

pytestmark = pytest.mark.django_db


def _orphan_charge(amount: str = "12.34", reference: str = "orphan-0001"):
    result = get_gateway().charge(
        ChargeRequest(
            amount=Decimal(amount), currency="USD", capture=True, reference=reference, card_token="tok_visa_4242"
        )
    )
    assert result.approved, result
    return result


def _payment(data) -> Payment:
    return Payment.objects.get(pk=data["id"])


def test_unsettled_transactions_lists_what_no_batch_holds_yet(authorized, captured, sandbox):
    unsettled = get_gateway().unsettled_transactions()
    ids = {t.transaction_id for t in unsettled}
    assert _payment(authorized).processor_transaction_id in ids
    assert _payment(captured).processor_transaction_id not in ids  # the emulator settled it at once
    row = next(t for t in unsettled if t.transaction_id == _payment(authorized).processor_transaction_id)
    assert row.status == "authorizedPendingCapture"
    assert row.invoice_number == _payment(authorized).reference
    assert row.settle_amount == Decimal("0.00")


def test_clean_ledger_reports_no_mismatch(api_client, authorized, captured, sandbox):
    sync_settlements()
    report = ledger_reconcile(day=None)
    assert report.mismatch_count == 0, report.to_dict()
    assert report.unfixed_count == 0
    assert report.charges == 2
    assert report.matched == 2
    assert report.payments_checked == 2
    assert report.to_dict()["summary"]["mismatches"] == 0


def test_orphan_charge_is_reported_and_no_payment_is_invented(captured, sandbox):
    sync_settlements()
    payments_before = Payment.objects.count()
    orphan = _orphan_charge()
    report = ledger_reconcile(day=None)
    assert Payment.objects.count() == payments_before
    assert len(report.orphans) == 1
    item = report.orphans[0]
    assert item["transaction_id"] == orphan.transaction_id
    assert item["amount"] == "12.34"
    assert item["invoice_number"] == "orphan-0001"
    assert item["same_reference_as_payment"] is None
    assert item["fixed"] is False
    assert report.unfixed_count == 1
    assert report.mismatch_count == 1


def test_payment_voided_behind_easypays_back_is_fixed_to_voided(authorized, sandbox):
    payment = _payment(authorized)
    assert get_gateway().void(transaction_id=payment.processor_transaction_id).approved
    report = ledger_reconcile(day=None)
    assert len(report.status_mismatches) == 1
    item = report.status_mismatches[0]
    assert item["payment_id"] == str(payment.pk)
    assert item["processor_status"] == "voided"
    assert (item["easypay_status"], item["status_after"], item["fixed"]) == ("authorized", "voided", True)
    assert _payment(authorized).status == PaymentStatus.VOIDED
    assert report.unfixed_count == 0
    # A second pass finds the ledger clean.
    assert ledger_reconcile(day=None).mismatch_count == 0


def test_report_only_mode_fixes_nothing(authorized, sandbox):
    payment = _payment(authorized)
    get_gateway().void(transaction_id=payment.processor_transaction_id)
    report = ledger_reconcile(day=None, fix=False)
    assert report.status_mismatches[0]["fixed"] is False
    assert report.unfixed_count == 1
    assert _payment(authorized).status == PaymentStatus.AUTHORIZED


def test_captured_payment_without_settled_at_gets_it(captured, sandbox):
    assert _payment(captured).settled_at is None
    report = ledger_reconcile(day=None)
    assert len(report.missing_settlements) == 1
    item = report.missing_settlements[0]
    assert item["payment_id"] == captured["id"]
    assert item["fixed"] is True
    assert item["settled_at"] is not None
    assert report.status_mismatches == []
    payment = _payment(captured)
    assert payment.settled_at is not None
    assert payment.status == PaymentStatus.CAPTURED


def test_payment_whose_transaction_the_processor_does_not_know_is_reported(captured, sandbox):
    sandbox.state.reset()  # the processor loses every record of the charge
    report = ledger_reconcile(day=None)
    assert [u["payment_id"] for u in report.unknown_at_processor] == [captured["id"]]
    assert report.unknown_at_processor[0]["processor_transaction_id"] == _payment(captured).processor_transaction_id
    assert report.unfixed_count == 1
    payment = _payment(captured)
    assert payment.status == PaymentStatus.CAPTURED  # reported, never rolled back


def test_amount_mismatch_is_reported_not_changed(captured, sandbox):
    sync_settlements()
    Payment.objects.filter(pk=captured["id"]).update(captured_amount=Decimal("90.00"))
    report = ledger_reconcile(day=None)
    assert len(report.amount_mismatches) == 1
    item = report.amount_mismatches[0]
    assert (item["field"], item["processor_amount"], item["easypay_amount"]) == ("captured_amount", "100.00", "90.00")
    assert item["fixed"] is False
    assert _payment(captured).captured_amount == Decimal("90.00")


def test_refund_made_at_the_processor_only_is_reported(captured, sandbox):
    sync_settlements()
    payment = _payment(captured)
    refund = get_gateway().refund(
        transaction_id=payment.processor_transaction_id, amount=Decimal("10.00"), card_last_four="4242"
    )
    assert refund.approved, refund
    report = ledger_reconcile(day=None)
    assert report.refunds == 1
    assert len(report.refund_mismatches) == 1
    item = report.refund_mismatches[0]
    assert (item["processor_refunded"], item["easypay_refunded"]) == ("10.00", "0.00")
    assert item["processor_refund_ids"] == [refund.transaction_id]
    assert report.orphans == []  # a refund is not an orphan charge
    assert _payment(captured).refunded_amount == Decimal("0.00")


def test_refund_made_through_easypay_agrees(api_client, captured, sandbox):
    sync_settlements()
    response = api_client.post(f"/api/v1/payments/{captured['id']}/refund", {"amount": "30.00"}, format="json")
    assert response.status_code in (200, 201), response.content
    report = ledger_reconcile(day=None)
    assert report.refunds == 1
    assert report.mismatch_count == 0, report.to_dict()


def test_a_day_window_only_sees_that_day(captured, sandbox):
    sync_settlements()
    _orphan_charge()
    today = datetime.now(UTC).date()
    assert len(ledger_reconcile(day=today).orphans) == 1
    yesterday = ledger_reconcile(day=today - timedelta(days=1))
    assert (yesterday.charges, yesterday.payments_checked, yesterday.mismatch_count) == (0, 0, 0)


def test_command_json_output_parses(captured, sandbox):
    out = StringIO()
    call_command("reconcile", "--json", stdout=out)
    report = json.loads(out.getvalue())
    ledger = report["ledger"]
    assert ledger["summary"]["missing_settlements"] + len(report["settlements"]["settled"]) >= 1
    assert ledger["summary"]["unfixed"] == 0
    assert ledger["matched"] == 1
    assert "reconciled" in report


def test_command_fail_on_mismatch_exits_non_zero_with_an_orphan(captured, sandbox):
    orphan = _orphan_charge()
    out = StringIO()
    call_command("reconcile", "--json", stdout=out)  # a report: findings alone do not fail it
    assert json.loads(out.getvalue())["ledger"]["orphans"][0]["transaction_id"] == orphan.transaction_id
    out = StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("reconcile", "--fail-on-mismatch", stdout=out)
    assert excinfo.value.returncode == 1
    assert f"orphan charge {orphan.transaction_id} 12.34 invoice orphan-0001" in out.getvalue()
    assert Payment.objects.count() == 1


def test_command_fail_on_mismatch_passes_when_all_is_fixed(authorized, sandbox):
    get_gateway().void(transaction_id=_payment(authorized).processor_transaction_id)
    out = StringIO()
    call_command("reconcile", "--fail-on-mismatch", "--date", datetime.now(UTC).date().isoformat(), stdout=out)
    assert "(fixed)" in out.getvalue()
    assert _payment(authorized).status == PaymentStatus.VOIDED


def test_ledger_task_runs_the_same_service(authorized, sandbox):
    from payments.tasks import ledger_reconcile as task

    get_gateway().void(transaction_id=_payment(authorized).processor_transaction_id)
    summary = task.delay().get()
    assert summary["status_mismatches"] == 1
    assert summary["fixed"] == 1
    assert _payment(authorized).status == PaymentStatus.VOIDED
