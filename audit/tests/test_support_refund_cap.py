"""The support group's refund cap: cumulative per payment, per currency in minor units, enforced by
``payments.services.refund_create`` under the payment's row lock (the admin only calls it)."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum

from audit.models import AuditLog
from core.exceptions import RefundLimitExceeded
from payments.models import Payment, Refund
from payments.services import payment_create, refund_create
from payments.tests.factories import RefundFactory

CHANGELIST = "/admin/payments/payment/"
CAPS = {"USD": 10_000, "JPY": 15_000, "EUR": 5_000}


@pytest.fixture(autouse=True)
def _caps(settings):
    settings.STAFF_SUPPORT_REFUND_LIMITS = dict(CAPS)


def _payment(merchant, amount: str, currency: str = "USD") -> Payment:
    payment = payment_create(
        merchant=merchant, is_test=True, amount=Decimal(amount), currency=currency, card_token="tok_visa"
    ).payment
    assert payment.status == "captured"
    return payment


def _refunded(payment) -> Decimal:
    return Payment.objects.get(pk=payment.pk).refunded_amount


@pytest.mark.django_db
def test_support_refunds_are_capped_in_total_per_payment(make_staff, merchant, anet_sandbox):
    support = make_staff("support")
    payment = _payment(merchant, "500.00")
    first = refund_create(payment=payment, amount=Decimal("60.00"), staff_user=support)
    assert (first.status, first.support_capped, first.created_by_id) == ("succeeded", True, support.pk)
    refund_create(payment=payment, amount=Decimal("40.00"), staff_user=support)  # exactly the cap in all
    with pytest.raises(RefundLimitExceeded) as refused:
        refund_create(payment=payment, amount=Decimal("0.01"), staff_user=support)
    assert refused.value.code == "refund_limit_exceeded"
    assert refused.value.status_code == 403
    assert refused.value.details == {
        "currency": "USD",
        "limit_minor": 10_000,
        "already_refunded_minor": 10_000,
        "requested_minor": 1,
    }
    assert Refund.objects.filter(payment=payment).count() == 2
    assert _refunded(payment) == Decimal("100.00")


@pytest.mark.django_db
def test_another_support_user_shares_the_payments_cap(make_staff, merchant, anet_sandbox):
    payment = _payment(merchant, "500.00")
    refund_create(payment=payment, amount=Decimal("80.00"), staff_user=make_staff("support", "s1"))
    with pytest.raises(RefundLimitExceeded):
        refund_create(payment=payment, amount=Decimal("30.00"), staff_user=make_staff("support", "s2"))
    assert _refunded(payment) == Decimal("80.00")


@pytest.mark.django_db
def test_the_cap_is_per_currency_in_minor_units(make_staff, merchant, anet_sandbox):
    support = make_staff("support")
    yen = _payment(merchant, "50000", "JPY")
    # 12,000 yen is far over "100.00" but within the JPY cap of 15,000 minor units (yen).
    assert refund_create(payment=yen, amount=Decimal("12000"), staff_user=support).status == "succeeded"
    with pytest.raises(RefundLimitExceeded):
        refund_create(payment=yen, amount=Decimal("3001"), staff_user=support)
    euro = _payment(merchant, "500.00", "EUR")
    with pytest.raises(RefundLimitExceeded):
        refund_create(payment=euro, amount=Decimal("50.01"), staff_user=support)  # EUR cap: 50.00
    assert refund_create(payment=euro, amount=Decimal("50.00"), staff_user=support).status == "succeeded"


@pytest.mark.django_db
def test_a_currency_without_a_cap_cannot_be_refunded_by_support(make_staff, merchant, anet_sandbox, settings):
    settings.STAFF_SUPPORT_REFUND_LIMITS = {"JPY": 15_000}
    payment = _payment(merchant, "20.00")
    with pytest.raises(RefundLimitExceeded, match="USD"):
        refund_create(payment=payment, amount=Decimal("1.00"), staff_user=make_staff("support"))
    assert not Refund.objects.exists()


@pytest.mark.django_db
def test_finance_and_api_refunds_are_not_capped_and_do_not_use_the_cap(make_staff, merchant, anet_sandbox):
    payment = _payment(merchant, "500.00")
    assert refund_create(payment=payment, amount=Decimal("300.00"), staff_user=make_staff("finance")).status == (
        "succeeded"
    )
    assert refund_create(payment=payment, amount=Decimal("50.00")).status == "succeeded"  # the API's path
    # Support still has its whole cap on this payment: only capped refunds count.
    assert refund_create(payment=payment, amount=Decimal("100.00"), staff_user=make_staff("support")).support_capped
    assert _refunded(payment) == Decimal("450.00")


@pytest.mark.django_db
def test_a_failed_support_refund_does_not_use_the_cap(make_staff, merchant, anet_sandbox):
    support = make_staff("support")
    payment = _payment(merchant, "500.00")
    failed = RefundFactory(
        payment=payment, amount=Decimal("100.00"), status=Refund.Status.FAILED, created_by=support, support_capped=True
    )
    assert refund_create(payment=payment, amount=Decimal("100.00"), staff_user=support).status == "succeeded"
    assert Refund.objects.filter(payment=payment, support_capped=True).exclude(pk=failed.pk).count() == 1


@pytest.mark.django_db
def test_three_admin_refunds_of_100_do_not_pass_a_100_cap(staff_client, captured_payment):
    client = staff_client("support")

    def refund(amount):
        return client.post(
            CHANGELIST,
            {
                "action": "refund_payments",
                "_selected_action": [str(captured_payment.pk)],
                "post": "yes",
                f"amount_{captured_payment.pk}": amount,
            },
        )

    assert refund("100.00").status_code == 302
    for _ in range(2):
        response = refund("100.00")
        assert response.status_code == 403
        assert b"at most 100.00 USD of this payment in all" in response.content
    assert Refund.objects.filter(payment=captured_payment).count() == 1
    assert _refunded(captured_payment) == Decimal("100.00")
    denied = AuditLog.objects.filter(action="admin.payment.refund", status_code=403)
    assert denied.count() == 2
    assert denied.first().response_data["error"] == "refund_limit_exceeded"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_support_refunds_never_pass_the_cap(make_staff, merchant, anet_sandbox):
    """Eight support refunds of 30.00 race on one payment with a 100.00 cap: exactly three pass."""
    support = make_staff("support")
    payment = _payment(merchant, "500.00")
    n = 8
    barrier = threading.Barrier(n)
    outcomes: list = [None] * n

    def worker(index):
        try:
            barrier.wait(timeout=10)
            outcomes[index] = refund_create(payment=payment, amount=Decimal("30.00"), staff_user=support).status
        except RefundLimitExceeded as exc:
            outcomes[index] = exc.code
        except Exception as exc:  # surfaced by the assertion below
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes, key=str) == ["refund_limit_exceeded"] * (n - 3) + ["succeeded"] * 3, outcomes
    refunds = Refund.objects.filter(payment=payment)
    assert refunds.count() == 3
    assert refunds.aggregate(total=Sum("amount"))["total"] == Decimal("90.00")
    assert _refunded(payment) == Decimal("90.00")
