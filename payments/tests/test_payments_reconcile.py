"""Lost replies, reconciliation, settlement, and refreshing from the processor's real state."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from payments import services
from payments.models import Payment, Refund
from payments.tasks import payment_reconcile, reconcile_pending, settlement_sync
from payments.tests.factories import PaymentFactory, charges, create
from webhooks.models import Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def slow_processor(sandbox, settings):
    """Replies arrive after the read timeout: the processor acts, EasyPay never hears back."""
    settings.AUTHORIZE_NET_READ_TIMEOUT = 0.3
    settings.AUTHORIZE_NET_CIRCUIT_FAILURE_THRESHOLD = 100
    sandbox.configure(latency_ms=1000)
    return sandbox


@pytest.fixture
def reconcile_now(settings):
    settings.PAYMENTS_RECONCILE_AFTER_SECONDS = 0


def types(merchant):
    return list(Event.objects.filter(merchant=merchant).order_by("created_at").values_list("type", flat=True))


def test_lost_charge_reply_is_pending_then_reconciled_to_the_real_charge(api_client, slow_processor, reconcile_now):
    response = create(api_client, key="lost")

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "processor_error"
    data = response.json()["data"]
    assert data["status"] == "pending"
    (charge,) = charges(slow_processor)  # the processor did charge
    assert data["processor_transaction_id"] == ""

    slow_processor.configure(latency_ms=0)
    result = reconcile_pending.delay().get()

    payment = Payment.objects.get(pk=data["id"])
    assert payment.status == "captured"
    assert payment.processor_transaction_id == charge.trans_id
    assert payment.captured_amount == Decimal("25.99")
    assert [f["payment_id"] for f in result["fixed"]] == [data["id"]]
    reconcile_pending.delay().get()  # running again changes nothing
    assert types(api_client.merchant).count("payment.captured") == 1
    assert len(charges(slow_processor)) == 1
    # The idempotent retry replays the stored 502; the merchant fetches the payment instead.
    assert create(api_client, key="lost").status_code == 502
    assert len(charges(slow_processor)) == 1
    assert api_client.get(f"/api/v1/payments/{data['id']}").json()["data"]["status"] == "captured"


def test_pending_payment_is_left_alone_before_the_threshold(api_client, slow_processor):
    data = create(api_client).json()["data"]
    slow_processor.configure(latency_ms=0)

    assert reconcile_pending.delay().get()["checked"] == 0
    assert Payment.objects.get(pk=data["id"]).status == "pending"


def test_unknown_charge_fails_only_after_the_grace_period(api_client, sandbox, reconcile_now, settings):
    payment = PaymentFactory(merchant=api_client.merchant, amount=Decimal("5.00"), currency="USD", status="pending")
    payment_reconcile.delay(str(payment.pk))
    assert Payment.objects.get(pk=payment.pk).status == "pending"

    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(minutes=16))
    reconcile_pending.delay()

    payment.refresh_from_db()
    assert payment.status == "failed"
    assert types(api_client.merchant) == ["payment.failed"]


def test_lost_capture_reply_is_reconciled(api_client, authorized, slow_processor, reconcile_now):
    response = api_client.post(f"/api/v1/payments/{authorized['id']}/capture", {}, format="json")
    assert response.status_code == 502
    payment = Payment.objects.get(pk=authorized["id"])
    assert payment.status == "authorized" and payment.pending_operation == "capture"
    assert api_client.post(f"/api/v1/payments/{authorized['id']}/cancel", {}, format="json").status_code == 409

    slow_processor.configure(latency_ms=0)
    reconcile_pending.delay()

    payment.refresh_from_db()
    assert (payment.status, payment.pending_operation, payment.captured_amount) == ("captured", "", Decimal("50.00"))


def test_lost_refund_reply_stays_reserved_then_is_reconciled(api_client, captured, slow_processor, reconcile_now):
    url = f"/api/v1/payments/{captured['id']}/refund"
    response = api_client.post(url, {"amount": "40.00"}, format="json")
    assert response.status_code == 502
    assert Refund.objects.get().status == "unknown"
    slow_processor.configure(latency_ms=0)
    # The 40.00 may have been refunded: it stays reserved until we know.
    assert api_client.post(url, {"amount": "60.01"}, format="json").status_code == 409

    reconcile_pending.delay()

    refund = Refund.objects.get()
    assert refund.status == "succeeded"
    assert refund.processor_transaction_id == charges(slow_processor, "refundTransaction")[0].trans_id
    payment = Payment.objects.get(pk=captured["id"])
    assert (payment.status, payment.refunded_amount, payment.refund_count) == (
        "partially_refunded",
        Decimal("40.00"),
        1,
    )


def test_settlement_sync_sets_settled_at_once(api_client, sandbox):
    sandbox.configure(settle_delay_seconds=3600)
    data = create(api_client).json()["data"]
    assert data["settled_at"] is None
    settlement_sync.delay()
    assert Payment.objects.get(pk=data["id"]).settled_at is None

    sandbox.state.settle(force=True)
    settlement_sync.delay()
    settlement_sync.delay()

    payment = Payment.objects.get(pk=data["id"])
    assert payment.settled_at is not None
    assert types(api_client.merchant) == ["payment.captured", "payment.settled"]


def test_refresh_applies_the_processors_state_but_never_moves_backwards(api_client, authorized, captured, sandbox):
    from payments.gateways import get_gateway

    auth = Payment.objects.get(pk=authorized["id"])
    assert get_gateway().capture(transaction_id=auth.processor_transaction_id, amount=Decimal("50.00")).approved
    auth = services.payment_refresh_from_processor(payment=auth)
    assert auth.status == "captured" and auth.captured_amount == Decimal("50.00")

    api_client.post(f"/api/v1/payments/{captured['id']}/refund", {}, format="json")
    refunded = services.payment_refresh_from_processor(payment=Payment.objects.get(pk=captured["id"]))
    assert refunded.status == "refunded" and refunded.refunded_amount == Decimal("100.00")


def test_reconcile_command_prints_json(api_client, slow_processor, reconcile_now):
    pid = create(api_client).json()["data"]["id"]
    slow_processor.configure(latency_ms=0)
    out = StringIO()

    call_command("reconcile", "--json", stdout=out)

    report = json.loads(out.getvalue())
    assert report["reconciled"]["fixed"][0]["payment_id"] == pid
    assert report["reconciled"]["fixed"][0]["to_status"] == "captured"
    assert report["settlements"]["errors"] == []


def test_reconcile_command_rejects_a_bad_date(sandbox):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("reconcile", "--date", "yesterday")
