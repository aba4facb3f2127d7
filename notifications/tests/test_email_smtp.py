"""Receipts, refund receipts and dunning notices delivered to a real SMTP server on loopback, MIME-parsed."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from decimal import Decimal

import pytest

from notifications.models import Notification, NotificationAttempt
from notifications.services import notification_send_run, notifications_for_event
from payments.gateways.tokens import TEST_TOKENS
from payments.tests.factories import create
from subscriptions.services import subscription_billing_run, utc_today
from webhooks.models import Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    """Run what the request queued after commit (the notification send), as a real commit would."""

    def run():
        return django_capture_on_commit_callbacks(execute=True)

    return run


def _settings(client, **changes):
    response = client.put("/api/v1/notification-settings", changes, format="json")
    assert response.status_code == 200, response.content
    return response.json()["data"]


# --- receipt ------------------------------------------------------------------------------------


def test_captured_payment_sends_a_receipt_with_the_merchants_name_and_no_more_of_the_card(
    api_client, anet_sandbox, smtp_server, commit
):
    _settings(api_client, sender_name="Acme Coffee", reply_to="help@acme.example")
    with commit():
        response = create(api_client, amount="25.99", description="Order 1001", customer_email="jane@example.com")
    assert response.status_code == 201, response.content
    payment = response.json()["data"]

    assert len(smtp_server.messages) == 1
    received = smtp_server.messages[0]
    assert received.mail_from == "receipts@easypay.test"  # DEFAULT_FROM_EMAIL is the envelope sender
    assert received.rcpt_tos == ["jane@example.com"]
    message = received.message
    assert message["From"].addresses[0].display_name == "Acme Coffee"
    assert message["From"].addresses[0].addr_spec == "receipts@easypay.test"
    assert message["To"] == "jane@example.com"
    assert message["Reply-To"] == "help@acme.example"
    assert message["Subject"] == "Your receipt from Acme Coffee"
    assert message.get_content_type() == "multipart/alternative"
    for body in (received.text, received.html):
        assert "Acme Coffee" in body
        assert "$25.99 USD" in body
        assert "Visa ending in 4242" in body
        assert payment["id"] in body
        assert "Order 1001" in body
        assert utc_today().isoformat() in body
        assert TEST_TOKENS["tok_visa_4242"].number not in body
        assert not re.search(r"\d{13,19}", body.replace(payment["id"], ""))

    row = Notification.objects.get()
    assert (row.kind, row.channel, row.status, row.recipient) == (
        "payment_receipt",
        "email",
        "sent",
        "jane@example.com",
    )
    assert (row.object_type, row.object_id, row.attempt_count) == ("payment", payment["id"], 1)
    assert row.event_id == Event.objects.get(type="payment.captured").id


def test_jpy_receipt_has_no_decimals(api_client, anet_sandbox, smtp_server, commit):
    with commit():
        response = create(api_client, amount="1500", currency="JPY", customer_email="taro@example.jp")
    assert response.status_code == 201, response.content
    text = smtp_server.messages[0].text
    assert "¥1,500 JPY" in text
    assert "1,500.00" not in text and "1500.00" not in text


def test_an_authorization_sends_nothing_until_it_is_captured(api_client, anet_sandbox, smtp_server, commit):
    with commit():
        response = create(api_client, amount="50.00", capture=False)
    assert response.status_code == 201
    assert smtp_server.messages == [] and not Notification.objects.exists()
    with commit():
        captured = api_client.post(f"/api/v1/payments/{response.json()['data']['id']}/capture", {"amount": "40.00"})
    assert captured.status_code == 200
    assert len(smtp_server.messages) == 1
    assert "$40.00 USD" in smtp_server.messages[0].text


def test_no_customer_email_no_receipt_and_declines_send_nothing(api_client, anet_sandbox, smtp_server, commit):
    with commit():
        assert create(api_client, customer_email="").status_code == 201
        assert create(api_client, card_token="tok_declined").status_code == 402
    assert smtp_server.messages == []
    assert not Notification.objects.exists()


def test_receipts_switched_off_send_nothing(api_client, anet_sandbox, smtp_server, commit):
    assert _settings(api_client, payment_receipt=False)["payment_receipt"] is False
    with commit():
        assert create(api_client).status_code == 201
    assert smtp_server.messages == [] and not Notification.objects.exists()


# --- refund -------------------------------------------------------------------------------------


def test_each_refund_sends_a_refund_receipt(api_client, anet_sandbox, smtp_server, commit):
    with commit():
        payment = create(api_client, amount="100.00", customer_email="jane@example.com").json()["data"]
    with commit():
        first = api_client.post(f"/api/v1/payments/{payment['id']}/refund", {"amount": "30.00", "reason": "Damaged"})
    with commit():
        second = api_client.post(f"/api/v1/payments/{payment['id']}/refund", {})
    assert first.status_code == second.status_code == 200
    refunds = second.json()["data"]["refunds"]
    assert len(smtp_server.messages) == 3  # receipt, two refund receipts
    partial, full = smtp_server.messages[1], smtp_server.messages[2]
    assert partial.message["Subject"] == "Your refund from " + api_client.merchant.name
    assert "$30.00 USD" in partial.text and "Damaged" in partial.text and "$100.00 USD" in partial.text
    assert "$70.00 USD" in full.text and "fully refunded" in full.text
    rows = Notification.objects.filter(kind="refund_receipt").order_by("created_at")
    assert sorted(r.object_id for r in rows) == sorted(r["id"] for r in refunds)
    assert all(r.status == "sent" for r in rows)


# --- subscriptions: payment failed, then cancelled --------------------------------------------


def test_failed_renewal_says_when_it_is_retried_and_cancellation_says_retries_ran_out(
    api_client, anet_sandbox, smtp_server, commit, settings
):
    settings.SUBSCRIPTION_RETRY_DAYS = [1, 3]
    body = {
        "customer_id": "cust_9",
        "plan_id": "gold",
        "amount": "19.00",
        "currency": "USD",
        "billing_cycle": "monthly",
        "card_token": "tok_declined",
        "customer_email": "sub@example.com",
    }
    with commit():
        created = api_client.post("/api/v1/subscriptions", body, format="json")
    assert created.status_code == 201, created.content
    today = utc_today()
    with commit():
        subscription_billing_run(today=today)
    failed = smtp_server.to("sub@example.com")
    assert len(failed) == 1
    assert failed[0].message["Subject"].startswith("Your payment to ")
    retry_on = (today + timedelta(days=1)).isoformat()
    assert f"We will try again on {retry_on}." in failed[0].text
    assert retry_on in failed[0].html
    assert "$19.00 USD" in failed[0].text

    with commit():
        subscription_billing_run(today=today + timedelta(days=1))
    with commit():
        subscription_billing_run(today=today + timedelta(days=4))
    received = smtp_server.to("sub@example.com")
    subjects = [m.message["Subject"] for m in received]
    assert len(received) == 3, subjects
    assert "try again on " + (today + timedelta(days=4)).isoformat() in received[1].text
    assert subjects[2].endswith("subscription has been cancelled")
    assert "after 3 failed attempts" in received[2].text and "No further charges" in received[2].text
    assert "try again" not in received[2].text
    kinds = list(Notification.objects.order_by("created_at").values_list("kind", flat=True))
    assert kinds == ["payment_failed", "payment_failed", "subscription_cancelled"]


def test_a_successful_renewal_sends_a_receipt(api_client, anet_sandbox, smtp_server, commit):
    body = {
        "customer_id": "cust_8",
        "plan_id": "basic",
        "amount": "9.50",
        "currency": "USD",
        "billing_cycle": "monthly",
        "card_token": "tok_mastercard",
        "customer_email": "renew@example.com",
    }
    assert api_client.post("/api/v1/subscriptions", body, format="json").status_code == 201
    with commit():
        subscription_billing_run(today=utc_today())
    (receipt,) = smtp_server.to("renew@example.com")
    assert "$9.50 USD" in receipt.text and "Mastercard ending in 0015" in receipt.text


# --- exactly once -------------------------------------------------------------------------------


def test_exactly_once_when_the_task_and_the_event_handler_run_again(api_client, anet_sandbox, smtp_server, commit):
    with commit():
        create(api_client)
    row = Notification.objects.get()
    event = Event.objects.get(type="payment.captured")
    for _ in range(3):
        notification_send_run(notification_id=row.pk)
        with commit():
            assert notifications_for_event(event=event) == []
    assert len(smtp_server.messages) == 1
    assert Notification.objects.count() == 1 and NotificationAttempt.objects.count() == 1


# --- failures: temporary retried with a cap, permanent recorded ----------------------------------


def _due_now(row):
    Notification.objects.filter(pk=row.pk, status="pending").update(
        next_attempt_at=row.created_at - timedelta(seconds=1)
    )


def test_smtp_4xx_is_retried_with_backoff_then_sent(api_client, anet_sandbox, smtp_server, commit, settings):
    settings.NOTIFICATION_RETRY_SCHEDULE_SECONDS = [60, 300, 1800]
    smtp_server.fail("451 4.3.0 Try again later", times=2)
    with commit():
        assert create(api_client).status_code == 201
    row = Notification.objects.get()
    assert (row.status, row.attempt_count) == ("pending", 1)
    assert "451" in row.last_error
    wait = (row.next_attempt_at - row.updated_at).total_seconds()
    assert 54 <= wait <= 66  # the first step of the schedule, +/-10% jitter
    notification_send_run(notification_id=row.pk)  # not due yet: nothing happens
    assert Notification.objects.get().attempt_count == 1
    _due_now(row)
    notification_send_run(notification_id=row.pk)
    row.refresh_from_db()
    assert (row.status, row.attempt_count) == ("pending", 2)
    assert 270 <= (row.next_attempt_at - row.updated_at).total_seconds() <= 330
    _due_now(row)
    notification_send_run(notification_id=row.pk)
    row.refresh_from_db()
    assert (row.status, row.attempt_count, row.last_error) == ("sent", 3, "")
    assert len(smtp_server.messages) == 1
    assert list(row.attempts.values_list("succeeded", flat=True)) == [False, False, True]


def test_temporary_failures_stop_at_the_cap_and_are_recorded_failed(
    api_client, anet_sandbox, smtp_server, commit, settings
):
    settings.NOTIFICATION_RETRY_SCHEDULE_SECONDS = [1, 1, 1]
    smtp_server.fail("421 4.7.0 Service not available")
    with commit():
        create(api_client)
    row = Notification.objects.get()
    for _ in range(10):
        _due_now(row)
        notification_send_run(notification_id=row.pk)
    row.refresh_from_db()
    assert (row.status, row.attempt_count) == ("failed", 4)  # the first try and three retries
    assert row.next_attempt_at is None and "421" in row.last_error
    assert smtp_server.behaviour.seen_data == 4 and smtp_server.messages == []


def test_smtp_5xx_is_permanent(api_client, anet_sandbox, smtp_server, commit):
    smtp_server.fail("550 5.1.1 No such user")
    with commit():
        assert create(api_client).status_code == 201
    row = Notification.objects.get()
    assert (row.status, row.attempt_count) == ("failed", 1)
    assert "550" in row.last_error and row.attempts.get().permanent
    _due_now(row)
    notification_send_run(notification_id=row.pk)
    assert Notification.objects.get().attempt_count == 1 and smtp_server.behaviour.seen_data == 1


def test_smtp_down_neither_fails_nor_slows_the_api_and_is_retried(api_client, anet_sandbox, smtp_down, commit):
    started = time.monotonic()
    with commit():
        response = create(api_client, amount="12.00")
        refund = api_client.post(f"/api/v1/payments/{response.json()['data']['id']}/refund", {})
    elapsed = time.monotonic() - started
    assert response.status_code == 201 and refund.status_code == 200
    assert refund.json()["data"]["refunded_amount"] == "12.00"
    assert elapsed < 5
    rows = Notification.objects.order_by("created_at")
    assert [(r.kind, r.status, r.attempt_count) for r in rows] == [
        ("payment_receipt", "pending", 1),
        ("refund_receipt", "pending", 1),
    ]
    assert all("refused" in r.last_error.lower() or "SMTP unavailable" in r.last_error for r in rows)


def test_the_sweep_sends_what_is_due(api_client, anet_sandbox, smtp_server, commit):
    from notifications.tasks import notifications_send_due

    smtp_server.fail("452 4.3.1 Insufficient storage", times=1)
    with commit():
        create(api_client, amount=str(Decimal("5.00")))
    row = Notification.objects.get()
    assert row.status == "pending"
    assert notifications_send_due() == 0  # the retry is not due yet
    _due_now(row)
    assert notifications_send_due() == 1
    assert Notification.objects.get().status == "sent" and len(smtp_server.messages) == 1


def test_sender_throughput_one_process(merchant, smtp_server, django_capture_on_commit_callbacks):
    """How fast one worker process hands receipts to a loopback SMTP server (one connection each)."""
    from notifications.models import Kind
    from notifications.services.queueing import notification_queue as _queue

    count = 100
    with django_capture_on_commit_callbacks(execute=False):
        rows = [
            _queue(
                merchant_id=merchant.pk,
                kind=Kind.PAYMENT_RECEIPT,
                channel="email",
                recipient=f"bulk{i}@example.com",
                object_type="payment",
                object_id=f"p{i}",
                dedupe_key=f"payment:p{i}",
                context={"payment_id": f"p{i}", "amount": "1.00", "currency": "USD", "card_brand": "visa"},
            )
            for i in range(count)
        ]
    started = time.monotonic()
    for row in rows:
        notification_send_run(notification_id=row.pk)
    elapsed = time.monotonic() - started
    print(f"\nsender: {count} emails in {elapsed:.2f} s = {count / elapsed:.0f}/s in one process")
    assert len(smtp_server.messages) == count
    assert Notification.objects.filter(status="sent").count() == count


def test_dates_are_utc_and_in_the_merchants_time_zone_when_set(api_client, anet_sandbox, smtp_server, commit):
    from notifications import formatting

    _settings(api_client, timezone="Asia/Tokyo", support_email="support@acme.example")
    with commit():
        create(api_client)
    text = smtp_server.messages[0].text
    assert re.search(r"Date: \d{4}-\d\d-\d\d \d\d:\d\d UTC \(\d{4}-\d\d-\d\d \d\d:\d\d JST\)", text), text
    assert "support@acme.example" in text
    assert formatting.when("2026-12-01T23:30:00Z", "America/New_York") == "2026-12-01 23:30 UTC (2026-12-01 18:30 EST)"
    assert formatting.money("1234.5", "EUR") == "€1,234.50 EUR" and formatting.money("0", "JPY") == "¥0 JPY"
    assert formatting.card("amex", "0002") == "American Express ending in 0002"
    assert formatting.card("visa", "4111111111111111") == "Visa ending in 1111"
