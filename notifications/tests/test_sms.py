"""SMS: off unless the merchant turns it on; customer_phone in E.164; Twilio through its official client
against a local stand-in of its API (2xx sent, 4xx failed for good, 5xx retried)."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest

from notifications import sms
from notifications.models import Notification
from notifications.services import notification_send_run
from payments.models import Payment
from payments.tests.factories import create

pytestmark = pytest.mark.django_db


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture(autouse=True)
def _empty_sms_outbox():
    sms.outbox.clear()
    yield
    sms.outbox.clear()


def _sms_on(client):
    assert client.put("/api/v1/notification-settings", {"sms_enabled": True}, format="json").status_code == 200


@pytest.mark.parametrize("phone", ["4155552671", "+1415555267", "+999123", "+1 (415) 555-2671 ext", "tel:+14155552671"])
def test_customer_phone_must_be_e164(api_client, anet_sandbox, phone):
    response = create(api_client, customer_phone=phone)
    assert response.status_code == 400
    assert "customer_phone" in response.json()["error"]["details"]
    assert not Payment.objects.exists()


def test_customer_phone_is_stored_and_returned(api_client, anet_sandbox):
    response = create(api_client, customer_phone="+442071838750")
    assert response.status_code == 201
    assert response.json()["data"]["customer_phone"] == "+442071838750"
    sub = api_client.post(
        "/api/v1/subscriptions",
        {
            "customer_id": "c1",
            "plan_id": "p",
            "amount": "5.00",
            "currency": "USD",
            "billing_cycle": "weekly",
            "card_token": "tok_visa",
            "customer_phone": "+14155552671",
        },
        format="json",
    )
    assert sub.status_code == 201 and sub.json()["data"]["customer_phone"] == "+14155552671"
    bad = api_client.patch(f"/api/v1/subscriptions/{sub.json()['data']['id']}", {"customer_phone": "12"}, format="json")
    assert bad.status_code == 400


def test_no_sms_unless_the_merchant_turns_it_on(api_client, anet_sandbox, commit):
    with commit():
        create(api_client, customer_phone="+14155552671")
    assert sms.outbox == []
    assert list(Notification.objects.values_list("channel", flat=True)) == ["email"]


def test_sms_receipt_is_short_and_holds_no_card_number(api_client, anet_sandbox, commit):
    _sms_on(api_client)
    with commit():
        payment = create(api_client, amount="25.99", customer_phone="+14155552671").json()["data"]
    (text,) = sms.outbox
    assert text.to == "+14155552671"
    assert "$25.99 USD" in text.body and "Visa ending in 4242" in text.body and payment["id"] in text.body
    assert "4242424242424242" not in text.body and len(text.body) <= 320
    row = Notification.objects.get(channel="sms")
    assert (row.status, row.recipient, row.provider_message_id) == ("sent", "+14155552671", text.sid)


def test_twilio_backend_through_the_official_client(api_client, anet_sandbox, fake_twilio, commit):
    _sms_on(api_client)
    with commit():
        create(api_client, customer_phone="+14155552671", customer_email="")
    (request,) = fake_twilio.requests
    assert request["path"] == f"/2010-04-01/Accounts/{'AC' + '0' * 32}/Messages.json"
    assert request["form"]["To"] == "+14155552671" and request["form"]["From"] == "+15005550006"
    assert "$25.99 USD" in request["form"]["Body"]
    expected = base64.b64encode(f"{'AC' + '0' * 32}:test-auth-token".encode()).decode()
    assert request["auth"] == f"Basic {expected}"
    row = Notification.objects.get()
    assert row.status == "sent" and row.provider_message_id == "SM" + "1".zfill(32)


def test_twilio_4xx_is_permanent_and_5xx_retried(api_client, anet_sandbox, fake_twilio, commit, settings):
    settings.NOTIFICATION_RETRY_SCHEDULE_SECONDS = [60]
    _sms_on(api_client)
    fake_twilio.status = 400
    with commit():
        create(api_client, customer_phone="+14155552671", customer_email="")
    first = Notification.objects.get()
    assert (first.status, first.attempt_count) == ("failed", 1) and "Twilio 400" in first.last_error

    fake_twilio.status = 503
    with commit():
        create(api_client, customer_phone="+14155552672", customer_email="")
    second = Notification.objects.exclude(pk=first.pk).get()
    assert (second.status, second.attempt_count) == ("pending", 1)
    fake_twilio.status = 201
    Notification.objects.filter(pk=second.pk).update(next_attempt_at=second.created_at - timedelta(seconds=1))
    notification_send_run(notification_id=second.pk)
    second.refresh_from_db()
    assert (second.status, second.attempt_count) == ("sent", 2)
    assert len(fake_twilio.requests) == 3


def test_twilio_unreachable_is_temporary(api_client, anet_sandbox, settings, commit):
    from notifications.tests.conftest import free_port

    settings.SMS_BACKEND = "twilio"
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = "AC" + "1" * 32, "t"
    settings.TWILIO_FROM_NUMBER = "+15005550006"
    settings.TWILIO_API_BASE_URL = f"http://127.0.0.1:{free_port()}"
    _sms_on(api_client)
    with commit():
        assert create(api_client, customer_phone="+14155552671", customer_email="").status_code == 201
    row = Notification.objects.get()
    assert (row.status, row.attempt_count) == ("pending", 1) and row.next_attempt_at is not None


def test_the_message_scanner_catches_card_numbers_and_secrets():
    from notifications.tests import scan

    assert scan.problems("Paid with Visa ending in 4242, payment 3f1c2a9e-8b7d") == []
    assert scan.problems("card 4242 4242 4242 4242") != []
    assert scan.problems("card 5424000000000015") != []
    assert scan.problems("key ek_test_0123456789abcdef.abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG") == ["API key"]
    assert scan.problems("whsec_" + "ab" * 24) == ["webhook secret"]
    assert scan.problems("order 1234567890123") == []  # 13 digits, not Luhn-valid
    assert scan.problems("payment 12345678-1234-4242-4242-424242424242") == []  # an id, not a card
    assert scan.problems("card: 4242-4242-4242-4242.") != []
