"""The recurring-billing pass against the Authorize.Net emulator: once per period, dunning, recovery."""

from __future__ import annotations

import json
import threading
from datetime import date, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from payments.models import Payment
from subscriptions.billing import payment_external_id, subscription_billing_run
from subscriptions.models import BillingAttempt, Subscription
from subscriptions.services import subscription_pause, subscription_resume
from webhooks.models import Event

from .factories import SubscriptionFactory, make_payment_method

D = date(2024, 1, 31)


def _types(sub):
    events = Event.objects.filter(merchant_id=sub.merchant_id, type__startswith="subscription.")
    return list(events.order_by("created_at").values_list("type", flat=True))


def _transactions(sandbox):
    return list(sandbox.state.transactions.values())


@pytest.mark.django_db
def test_due_subscription_is_charged_linked_and_advanced_once(anet_sandbox):
    sub = SubscriptionFactory(start_date=D, next_billing_date=D, amount="25.00")
    report = subscription_billing_run(today=D)
    assert (report.due, report.succeeded, report.failed, report.errors) == (1, 1, 0, 0)

    sub.refresh_from_db()
    assert sub.status == "active"
    assert sub.next_billing_date == date(2024, 2, 29)
    assert (sub.current_period_start, sub.current_period_end) == (D, date(2024, 2, 29))
    [payment] = Payment.objects.all()
    assert payment.subscription_id == sub.pk and payment.status == "captured"
    assert str(payment.amount) == "25.00" and payment.merchant_id == sub.merchant_id
    assert payment.external_id == payment_external_id(subscription_id=sub.pk, period_start=D, attempt_number=1)
    [attempt] = BillingAttempt.objects.all()
    assert (attempt.status, attempt.payment_id, attempt.period_end) == ("succeeded", payment.pk, date(2024, 2, 29))
    assert len(_transactions(anet_sandbox)) == 1
    assert _types(sub) == ["subscription.payment_succeeded"]
    event = Event.objects.get(type="subscription.payment_succeeded")
    assert event.data["id"] == str(sub.pk) and event.data["next_billing_date"] == "2024-02-29"

    # The same day again, and a day later: nothing more is due.
    assert subscription_billing_run(today=D).due == 0
    assert subscription_billing_run(today=D + timedelta(days=1)).due == 0
    assert Payment.objects.count() == 1 and len(_transactions(anet_sandbox)) == 1


@pytest.mark.django_db
def test_daily_passes_over_three_months_bill_each_anchored_period_once(anet_sandbox):
    sub = SubscriptionFactory(start_date=D, next_billing_date=D)
    day = D
    while day <= date(2024, 5, 1):
        subscription_billing_run(today=day)
        day += timedelta(days=1)
    periods = list(BillingAttempt.objects.order_by("period_start").values_list("period_start", flat=True))
    assert periods == [D, date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30)]
    assert Payment.objects.filter(subscription=sub, status="captured").count() == 4
    assert len(_transactions(anet_sandbox)) == 4
    sub.refresh_from_db()
    assert sub.next_billing_date == date(2024, 5, 31)


@pytest.mark.django_db
def test_a_late_pass_catches_up_one_period_per_run_without_skipping(anet_sandbox):
    sub = SubscriptionFactory(start_date=D, next_billing_date=D, billing_cycle="weekly")
    late = D + timedelta(days=15)  # three weekly periods are due
    for _ in range(4):
        subscription_billing_run(today=late)
    sub.refresh_from_db()
    assert list(BillingAttempt.objects.order_by("period_start").values_list("period_start", flat=True)) == [
        D,
        D + timedelta(days=7),
        D + timedelta(days=14),
    ]
    assert sub.next_billing_date == D + timedelta(days=21)
    assert Payment.objects.count() == 3


@pytest.mark.django_db
def test_paused_and_cancelled_subscriptions_are_never_billed(anet_sandbox):
    SubscriptionFactory(start_date=D, next_billing_date=D, status="paused")
    SubscriptionFactory(start_date=D, next_billing_date=D, status="cancelled")
    SubscriptionFactory(start_date=D + timedelta(days=1), next_billing_date=D + timedelta(days=1))  # not yet due
    report = subscription_billing_run(today=D)
    assert report.due == 0
    assert Payment.objects.count() == 0 and _transactions(anet_sandbox) == []
    assert BillingAttempt.objects.count() == 0


@pytest.mark.django_db
def test_declines_go_past_due_retry_on_schedule_then_cancel(anet_sandbox, settings):
    settings.SUBSCRIPTION_RETRY_DAYS = [1, 3, 5]
    sub = SubscriptionFactory(start_date=D, next_billing_date=D, payment_method=make_payment_method("tok_declined"))

    report = subscription_billing_run(today=D)
    assert (report.due, report.failed) == (1, 1)
    sub.refresh_from_db()
    assert (sub.status, sub.failure_count, sub.next_billing_date) == ("past_due", 1, D + timedelta(days=1))
    assert _types(sub) == ["subscription.payment_failed", "subscription.past_due"]

    # Not before the retry date.
    assert subscription_billing_run(today=D).due == 0
    schedule = [(D + timedelta(days=1), 2, D + timedelta(days=4)), (D + timedelta(days=4), 3, D + timedelta(days=9))]
    for day, failures, next_day in schedule:
        subscription_billing_run(today=day)
        sub.refresh_from_db()
        assert (sub.status, sub.failure_count, sub.next_billing_date) == ("past_due", failures, next_day)

    subscription_billing_run(today=D + timedelta(days=9))
    sub.refresh_from_db()
    assert sub.status == "cancelled" and sub.cancelled_at is not None and sub.next_billing_date is None
    assert _types(sub) == [
        "subscription.payment_failed",
        "subscription.past_due",
        "subscription.payment_failed",
        "subscription.payment_failed",
        "subscription.payment_failed",
        "subscription.cancelled",
    ]
    attempts = list(BillingAttempt.objects.order_by("attempt_number"))
    assert [a.attempt_number for a in attempts] == [1, 2, 3, 4]
    assert {a.period_start for a in attempts} == {D}  # every retry is for the same period
    assert {a.status for a in attempts} == {"failed"}
    assert Payment.objects.filter(status="declined").count() == 4
    assert len(_transactions(anet_sandbox)) == 4
    assert subscription_billing_run(today=D + timedelta(days=60)).due == 0


@pytest.mark.django_db
def test_a_retry_with_a_new_card_recovers_the_same_period(anet_sandbox, api_client):
    sub = SubscriptionFactory(
        merchant=api_client.merchant,
        start_date=D,
        next_billing_date=D,
        payment_method=make_payment_method("tok_declined"),
    )
    subscription_billing_run(today=D)
    response = api_client.patch(f"/api/v1/subscriptions/{sub.pk}", {"card_token": "tok_visa"}, format="json")
    assert response.status_code == 200
    subscription_billing_run(today=D + timedelta(days=1))
    sub.refresh_from_db()
    assert (sub.status, sub.failure_count) == ("active", 0)
    assert sub.next_billing_date == date(2024, 2, 29)  # still anchored to the period, not to the retry day
    assert (sub.current_period_start, sub.current_period_end) == (D, date(2024, 2, 29))
    assert list(BillingAttempt.objects.order_by("attempt_number").values_list("status", flat=True)) == [
        "failed",
        "succeeded",
    ]
    assert _types(sub)[-2:] == ["subscription.updated", "subscription.payment_succeeded"]


@pytest.mark.django_db
def test_hard_decline_cancels_at_once(anet_sandbox):
    sub = SubscriptionFactory(start_date=D, next_billing_date=D, payment_method=make_payment_method("tok_expired"))
    report = subscription_billing_run(today=D)
    assert report.failed == 1
    sub.refresh_from_db()
    assert sub.status == "cancelled" and sub.failure_count == 1
    assert _types(sub) == ["subscription.payment_failed", "subscription.cancelled"]
    [attempt] = BillingAttempt.objects.all()
    assert attempt.failure_reason == "hard_decline" and attempt.processor_reason_code == "8"
    assert subscription_billing_run(today=D + timedelta(days=1)).due == 0
    assert Payment.objects.count() == 1


@pytest.mark.django_db
def test_processor_errors_are_not_declines_and_stay_due(anet_sandbox):
    sub = SubscriptionFactory(
        start_date=D, next_billing_date=D, payment_method=make_payment_method("tok_processor_error")
    )
    report = subscription_billing_run(today=D)
    assert (report.due, report.failed, report.errors) == (1, 0, 1)
    sub.refresh_from_db()
    assert (sub.status, sub.failure_count, sub.next_billing_date) == ("active", 0, D)
    assert _types(sub) == []
    # The next pass tries again (a new attempt for the same period).
    subscription_billing_run(today=D)
    assert list(BillingAttempt.objects.order_by("attempt_number").values_list("attempt_number", "failure_reason")) == [
        (1, "processor_error"),
        (2, "processor_error"),
    ]


@pytest.mark.django_db
def test_processor_outage_aborts_the_pass_and_leaves_everything_due(anet_sandbox, settings):
    from payments.gateways import reset_gateway

    subs = [SubscriptionFactory(start_date=D, next_billing_date=D) for _ in range(8)]
    settings.AUTHORIZE_NET_ENDPOINT = "http://127.0.0.1:9/xml/v1/request.api"  # nothing listens there
    settings.AUTHORIZE_NET_CIRCUIT_FAILURE_THRESHOLD = 2
    reset_gateway()
    report = subscription_billing_run(today=D)
    assert report.succeeded == 0 and report.failed == 0 and report.aborted is True
    for sub in subs:
        sub.refresh_from_db()
        assert (sub.status, sub.failure_count, sub.next_billing_date) == ("active", 0, D)
    assert not BillingAttempt.objects.filter(status="pending").exists()
    assert not Event.objects.filter(type__startswith="subscription.").exists()
    # Back up: the next pass bills every one of them once.
    settings.AUTHORIZE_NET_ENDPOINT = anet_sandbox.url
    reset_gateway()
    assert subscription_billing_run(today=D).succeeded == 8
    assert Payment.objects.filter(status="captured").count() == 8


@pytest.mark.django_db
def test_resume_does_not_back_bill_paused_periods(anet_sandbox):
    sub = SubscriptionFactory(start_date=D, next_billing_date=D, billing_cycle="weekly")
    subscription_billing_run(today=D)
    subscription_pause(subscription=sub)
    for offset in range(1, 31):
        subscription_billing_run(today=D + timedelta(days=offset))
    assert Payment.objects.count() == 1
    sub = subscription_resume(subscription=sub, today=D + timedelta(days=30))
    assert sub.next_billing_date == D + timedelta(days=35)
    subscription_billing_run(today=D + timedelta(days=30))
    assert Payment.objects.count() == 1
    subscription_billing_run(today=D + timedelta(days=35))
    assert Payment.objects.count() == 2
    assert list(BillingAttempt.objects.order_by("period_start").values_list("period_start", flat=True)) == [
        D,
        D + timedelta(days=35),
    ]


@pytest.mark.django_db
def test_resume_within_a_paid_period_waits_for_its_end(anet_sandbox):
    sub = SubscriptionFactory(start_date=D, next_billing_date=D)
    subscription_billing_run(today=D)
    subscription_pause(subscription=sub)
    sub = subscription_resume(subscription=sub, today=D)
    assert sub.next_billing_date == date(2024, 2, 29)
    assert subscription_billing_run(today=D).due == 0


@pytest.mark.django_db
def test_stale_claim_without_payment_is_charged_once_with_the_same_external_id(anet_sandbox):
    sub = SubscriptionFactory(start_date=D, next_billing_date=D)
    ext = payment_external_id(subscription_id=sub.pk, period_start=D, attempt_number=1)
    BillingAttempt.objects.create(
        subscription=sub,
        period_start=D,
        period_end=date(2024, 2, 29),
        attempt_number=1,
        amount=sub.amount,
        currency="USD",
        payment_external_id=ext,
        claimed_at=timezone.now() - timedelta(hours=1),
    )
    report = subscription_billing_run(today=D)
    assert report.recovered == 1 and report.succeeded == 1
    [payment] = Payment.objects.all()
    assert payment.external_id == ext
    assert BillingAttempt.objects.get().status == "succeeded"
    assert len(_transactions(anet_sandbox)) == 1


@pytest.mark.django_db
def test_fresh_claim_of_another_worker_is_left_alone(anet_sandbox):
    sub = SubscriptionFactory(start_date=D, next_billing_date=D)
    BillingAttempt.objects.create(
        subscription=sub,
        period_start=D,
        period_end=date(2024, 2, 29),
        attempt_number=1,
        amount=sub.amount,
        currency="USD",
        payment_external_id="x",
        claimed_at=timezone.now(),
    )
    report = subscription_billing_run(today=D)
    assert (report.due, report.skipped, report.succeeded) == (1, 1, 0)
    assert Payment.objects.count() == 0 and _transactions(anet_sandbox) == []


@pytest.mark.django_db
def test_stale_claim_whose_payment_exists_is_adopted_not_charged_again(anet_sandbox):
    from payments.services import payment_create

    sub = SubscriptionFactory(start_date=D, next_billing_date=D)
    ext = payment_external_id(subscription_id=sub.pk, period_start=D, attempt_number=1)
    BillingAttempt.objects.create(
        subscription=sub,
        period_start=D,
        period_end=date(2024, 2, 29),
        attempt_number=1,
        amount=sub.amount,
        currency="USD",
        payment_external_id=ext,
        claimed_at=timezone.now() - timedelta(hours=1),
    )
    # The worker charged, then died before recording the outcome.
    payment = payment_create(
        merchant=sub.merchant,
        is_test=True,
        amount=sub.amount,
        currency="USD",
        card_token="tok_visa",
        external_id=ext,
        subscription=sub,
    ).payment
    report = subscription_billing_run(today=D)
    assert report.succeeded == 1
    assert Payment.objects.count() == 1 and len(_transactions(anet_sandbox)) == 1
    attempt = BillingAttempt.objects.get()
    assert (attempt.status, attempt.payment_id) == ("succeeded", payment.pk)
    sub.refresh_from_db()
    assert sub.next_billing_date == date(2024, 2, 29)


@pytest.mark.django_db
def test_command_and_task_run_the_same_pass(anet_sandbox):
    from subscriptions.tasks import bill_due_subscriptions

    SubscriptionFactory(start_date=D, next_billing_date=D)
    out = StringIO()
    call_command("bill_subscriptions", "--date", D.isoformat(), "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert {k: report[k] for k in ("date", "due", "succeeded", "failed", "skipped", "errors")} == {
        "date": "2024-01-31",
        "due": 1,
        "succeeded": 1,
        "failed": 0,
        "skipped": 0,
        "errors": 0,
    }
    assert bill_due_subscriptions.delay(D.isoformat()).get()["due"] == 0
    out = StringIO()
    call_command("bill_subscriptions", "--date", D.isoformat(), stdout=out)
    assert "due 0" in out.getvalue()


@pytest.mark.django_db
def test_command_rejects_a_bad_date():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("bill_subscriptions", "--date", "31/01/2024")


@pytest.mark.django_db
def test_live_mode_stores_a_customer_profile_and_charges_it(anet_sandbox, merchant, make_api_key):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_X_API_KEY=make_api_key(merchant=merchant, mode="live").key)
    today = timezone.now().date()
    response = client.post(
        "/api/v1/subscriptions",
        {
            "customer_id": "cus_live",
            "plan_id": "p",
            "amount": "10.00",
            "currency": "USD",
            "billing_cycle": "monthly",
            "card_token": "eyJub25jZSI6ImxpdmUifQ",
            "customer_email": "live@example.com",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data["is_test"] is False
    assert data["payment_method"]["type"] == "customer_profile"
    assert set(data["payment_method"]) == {"type", "card_last_four", "card_brand"}  # no profile ids
    stored = Subscription.objects.get(pk=data["id"])
    assert stored.payment_method["customer_profile_id"] and stored.payment_method["payment_profile_id"]
    assert "eyJub25jZSI6ImxpdmUifQ" not in json.dumps(stored.payment_method)
    report = subscription_billing_run(today=today)
    assert report.succeeded == 1
    payment = Payment.objects.get(subscription=stored)
    assert payment.status == "captured" and payment.is_test is False
    stored.refresh_from_db()
    assert stored.payment_method["card_last_four"] == "1111"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_passes_bill_each_period_exactly_once(anet_sandbox):
    subs = [SubscriptionFactory(start_date=D, next_billing_date=D) for _ in range(24)]
    barrier = threading.Barrier(3)
    reports, errors = [], []

    def run():
        try:
            barrier.wait()
            reports.append(subscription_billing_run(today=D, batch_size=5))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert sum(r.succeeded for r in reports) == 24
    assert Payment.objects.count() == 24
    assert Payment.objects.values("subscription_id").distinct().count() == 24
    assert len(_transactions(anet_sandbox)) == 24
    assert BillingAttempt.objects.filter(status="succeeded").count() == 24
    assert BillingAttempt.objects.count() == 24
    for sub in subs:
        sub.refresh_from_db()
        assert sub.next_billing_date == date(2024, 2, 29)
    assert Event.objects.filter(type="subscription.payment_succeeded").count() == 24
    # And again: nothing.
    assert subscription_billing_run(today=D).due == 0


@pytest.mark.django_db
def test_held_charge_keeps_the_period_claimed_until_reconciled(anet_sandbox, settings):
    from payments.services import payment_refresh_from_processor

    sub = SubscriptionFactory(start_date=D, next_billing_date=D, payment_method=make_payment_method("tok_held"))
    report = subscription_billing_run(today=D)
    assert (report.due, report.succeeded, report.failed) == (1, 0, 0)
    attempt = BillingAttempt.objects.get()
    assert attempt.status == "pending" and attempt.payment.status == "held"
    sub.refresh_from_db()
    assert (sub.status, sub.failure_count, sub.next_billing_date) == ("active", 0, D)

    # Another pass while the outcome is unknown: the period stays claimed, nothing is charged again.
    report = subscription_billing_run(today=D)
    assert (report.due, report.skipped) == (1, 1)
    assert Payment.objects.count() == 1 and len(_transactions(anet_sandbox)) == 1

    # The processor approves it; once payments has reconciled it, the next pass adopts the outcome.
    anet_sandbox.state.review(attempt.payment.processor_transaction_id, "approve")
    assert payment_refresh_from_processor(payment=attempt.payment).status == "captured"
    settings.SUBSCRIPTION_STALE_ATTEMPT_MINUTES = 0
    report = subscription_billing_run(today=D)
    assert report.succeeded == 1
    sub.refresh_from_db()
    assert (sub.status, sub.next_billing_date) == ("active", date(2024, 2, 29))
    assert BillingAttempt.objects.get().status == "succeeded"
    assert Payment.objects.count() == 1 and len(_transactions(anet_sandbox)) == 1


@pytest.mark.django_db
def test_metrics_count_results(anet_sandbox):
    from subscriptions.metrics import BILLING_TOTAL

    before = BILLING_TOTAL.labels(result="succeeded")._value.get()
    declined_before = BILLING_TOTAL.labels(result="declined")._value.get()
    SubscriptionFactory(start_date=D, next_billing_date=D)
    SubscriptionFactory(start_date=D, next_billing_date=D, payment_method=make_payment_method("tok_declined"))
    subscription_billing_run(today=D)
    assert BILLING_TOTAL.labels(result="succeeded")._value.get() == before + 1
    assert BILLING_TOTAL.labels(result="declined")._value.get() == declined_before + 1


@pytest.mark.django_db
def test_no_card_number_is_stored_or_returned(api_client):
    from payments.gateways.tokens import TEST_TOKENS

    response = api_client.post(
        "/api/v1/subscriptions",
        {
            "customer_id": "c",
            "plan_id": "p",
            "amount": "5.00",
            "currency": "USD",
            "billing_cycle": "weekly",
            "card_token": "tok_amex",
        },
        format="json",
    )
    assert response.status_code == 201
    stored = Subscription.objects.get(pk=response.json()["data"]["id"])
    blob = json.dumps(stored.payment_method) + response.content.decode()
    blob += json.dumps(list(Event.objects.values_list("data", flat=True)))
    assert TEST_TOKENS["tok_amex"].number not in blob
    assert TEST_TOKENS["tok_amex"].card_code not in json.dumps(stored.payment_method)
    assert stored.payment_method == {
        "type": "test_token",
        "token": "tok_amex",
        "card_last_four": "0002",
        "card_brand": "amex",
        "card_expiry": TEST_TOKENS["tok_amex"].expiry,  # kept for the expiring-card notice
    }


@pytest.mark.django_db
def test_an_interrupted_pass_gives_back_unsent_claims_and_a_rerun_bills_each_once(anet_sandbox, settings, monkeypatch):
    import payments.services

    subs = [SubscriptionFactory(start_date=D, next_billing_date=D) for _ in range(3)]
    real = payments.services.payment_create
    calls = []

    def crash_on_second(**kwargs):
        calls.append(kwargs["external_id"])
        if len(calls) == 2:
            raise KeyboardInterrupt  # the worker is killed while this charge is being made
        return real(**kwargs)

    monkeypatch.setattr(payments.services, "payment_create", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        subscription_billing_run(today=D)
    monkeypatch.setattr(payments.services, "payment_create", real)
    statuses = sorted(BillingAttempt.objects.values_list("status", "failure_reason"))
    assert statuses == [("failed", "interrupted"), ("pending", ""), ("succeeded", "")]

    # Re-run at once: the unsent claim is billed, the in-flight one is left to its lease.
    report = subscription_billing_run(today=D)
    assert (report.succeeded, report.skipped) == (1, 1)
    # Later, the dead worker's lease is stale: re-checked, found unpaid, charged with the same external_id.
    settings.SUBSCRIPTION_STALE_ATTEMPT_MINUTES = 0
    report = subscription_billing_run(today=D)
    assert report.recovered == 1 and report.succeeded == 1
    assert Payment.objects.filter(status="captured").count() == 3
    assert len(_transactions(anet_sandbox)) == 3
    assert sorted(Payment.objects.values_list("subscription_id", flat=True)) == sorted(s.pk for s in subs)
    assert subscription_billing_run(today=D).due == 0
