"""GET/PUT /notification-settings, GET /notifications (filters, pagination, isolation), resend, scopes."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from notifications.models import Notification, NotificationSettings
from payments.tests.factories import create

pytestmark = pytest.mark.django_db

SETTINGS_URL = "/api/v1/notification-settings"
LIST_URL = "/api/v1/notifications"


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


def _client(make_api_key, merchant, permissions):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=make_api_key(merchant=merchant, permissions=permissions).key)
    return client


# --- settings -----------------------------------------------------------------------------------


def test_settings_defaults_receipts_on_reminders_off(api_client):
    response = api_client.get(SETTINGS_URL)
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {"data", "request_id", "timestamp"}
    data = body["data"]
    assert data["payment_receipt"] is True and data["refund_receipt"] is True
    assert data["payment_failed"] is True and data["subscription_cancelled"] is True
    assert data["renewal_reminder"] is False and data["sms_enabled"] is False
    assert data["sender_name"] == "" and data["reply_to"] == ""
    assert not NotificationSettings.objects.exists()  # reading stores nothing


def test_put_changes_only_what_it_names(api_client):
    response = api_client.put(
        SETTINGS_URL,
        {"sender_name": "Acme Coffee", "reply_to": "help@acme.example", "refund_receipt": False},
        format="json",
    )
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert (data["sender_name"], data["reply_to"], data["refund_receipt"]) == (
        "Acme Coffee",
        "help@acme.example",
        False,
    )
    assert data["payment_receipt"] is True
    again = api_client.put(SETTINGS_URL, {"renewal_reminder": True, "renewal_reminder_days": 5}, format="json")
    assert again.json()["data"]["sender_name"] == "Acme Coffee"
    assert api_client.get(SETTINGS_URL).json()["data"]["renewal_reminder_days"] == 5


def test_a_settings_change_applies_to_the_next_payment_though_the_settings_are_cached(
    api_client, anet_sandbox, django_assert_num_queries, merchant
):
    from notifications.services import settings_for

    assert create(api_client, customer_email="first@example.com").status_code == 201
    assert Notification.objects.filter(recipient="first@example.com").count() == 1
    with django_assert_num_queries(0):
        assert settings_for(merchant_id=merchant.pk).payment_receipt is True  # read from the cache

    assert api_client.put(SETTINGS_URL, {"payment_receipt": False}, format="json").status_code == 200
    assert create(api_client, customer_email="second@example.com").status_code == 201
    assert not Notification.objects.filter(recipient="second@example.com").exists()
    assert api_client.get(SETTINGS_URL).json()["data"]["payment_receipt"] is False

    assert api_client.put(SETTINGS_URL, {"payment_receipt": True}, format="json").status_code == 200
    assert create(api_client, customer_email="third@example.com").status_code == 201
    assert Notification.objects.filter(recipient="third@example.com").count() == 1


@pytest.mark.parametrize(
    "body, field",
    [
        ({"reply_to": "not-an-email"}, "reply_to"),
        ({"payment_receipt": "yes"}, "payment_receipt"),
        ({"payment_receipt": None}, "payment_receipt"),
        ({"renewal_reminder_days": 0}, "renewal_reminder_days"),
        ({"renewal_reminder_days": 31}, "renewal_reminder_days"),
        ({"sender_name": "Evil\r\nBcc: x@y.z"}, "sender_name"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"receipts_please": True}, "receipts_please"),
    ],
)
def test_bad_settings_are_400_and_change_nothing(api_client, body, field):
    response = api_client.put(SETTINGS_URL, body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error" and field in error["details"]
    assert not NotificationSettings.objects.exists()


def test_put_with_a_non_object_or_empty_body_is_400(api_client):
    assert api_client.put(SETTINGS_URL, [1, 2], format="json").status_code == 400
    assert api_client.put(SETTINGS_URL, {}, format="json").status_code == 400


def test_scopes(make_api_key, merchant):
    reader = _client(make_api_key, merchant, ["notifications:read"])
    writer = _client(make_api_key, merchant, ["notifications:write"])
    payments_only = _client(make_api_key, merchant, ["payments:read", "payments:write"])
    assert reader.get(SETTINGS_URL).status_code == 200
    assert reader.get(LIST_URL).status_code == 200
    denied = reader.put(SETTINGS_URL, {"sms_enabled": True}, format="json")
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "permission_denied"
    assert writer.put(SETTINGS_URL, {"sms_enabled": True}, format="json").status_code == 200
    assert payments_only.get(SETTINGS_URL).status_code == 403
    assert payments_only.get(LIST_URL).status_code == 403
    assert APIClient().get(SETTINGS_URL).status_code == 401


def test_star_includes_the_notification_scopes():
    from accounts.scopes import expand

    assert {"notifications:read", "notifications:write"} <= set(expand(["*"]))


# --- list ---------------------------------------------------------------------------------------


def test_list_shows_what_was_sent_to_whom_for_which_object(api_client, anet_sandbox, commit):
    with commit():
        payment = create(api_client, customer_email="a@example.com").json()["data"]
        api_client.post(f"/api/v1/payments/{payment['id']}/refund", {"amount": "1.00"})
        create(api_client, customer_email="b@example.com")
    response = api_client.get(LIST_URL)
    assert response.status_code == 200
    body = response.json()
    assert body["pagination"] == {"limit": 20, "has_more": False, "next_cursor": None}
    rows = body["data"]
    assert [r["kind"] for r in rows] == ["payment_receipt", "refund_receipt", "payment_receipt"]  # newest first
    assert rows[2]["recipient"] == "a@example.com" and rows[2]["object_id"] == payment["id"]
    assert rows[2]["object_type"] == "payment" and rows[2]["status"] == "sent" and rows[2]["channel"] == "email"
    refund_id = api_client.get(f"/api/v1/payments/{payment['id']}").json()["data"]["refunds"][0]["id"]
    assert rows[1]["object_type"] == "refund" and rows[1]["object_id"] == refund_id
    assert rows[2]["event_id"].startswith("evt_") and rows[2]["subject"].startswith("Your receipt from")
    assert rows[2]["sent_at"] and rows[2]["attempt_count"] == 1
    assert "body_text" not in rows[2] and "context" not in rows[2]

    def ids(query):
        r = api_client.get(LIST_URL + query)
        assert r.status_code == 200, r.content
        return [x["id"] for x in r.json()["data"]]

    assert len(ids("?kind=refund_receipt")) == 1
    assert len(ids("?status=sent")) == 3 and ids("?status=failed") == []
    assert ids(f"?object_id={payment['id']}") == [rows[1]["id"], rows[2]["id"]]  # its receipt and refund
    assert ids(f"?object_id={refund_id}") == [rows[1]["id"]]
    assert ids("?object_id=nothing-here") == []
    first = api_client.get(LIST_URL + "?limit=2").json()
    assert first["pagination"]["has_more"] is True
    rest = api_client.get(LIST_URL + f"?limit=2&cursor={first['pagination']['next_cursor']}").json()
    assert [x["id"] for x in first["data"] + rest["data"]] == [r["id"] for r in rows]
    for bad in ("?kind=nope", "?status=lost", "?limit=0", "?cursor=garbage"):
        r = api_client.get(LIST_URL + bad)
        assert r.status_code == 400 and r.json()["error"]["code"] == "validation_error", bad


def test_another_merchants_notifications_are_invisible(api_client, other_api_client, anet_sandbox, commit):
    with commit():
        create(api_client)
    row = Notification.objects.get()
    assert other_api_client.get(LIST_URL).json()["data"] == []
    assert other_api_client.get(f"{LIST_URL}/{row.pk}").status_code == 404
    assert other_api_client.post(f"{LIST_URL}/{row.pk}/resend").status_code == 404
    assert api_client.get(f"{LIST_URL}/{row.pk}").json()["data"]["id"] == row.pk
    assert api_client.get(f"{LIST_URL}/ntf_nope").status_code == 404
    assert api_client.get(f"{LIST_URL}/not-an-id!").status_code == 404
    assert Notification.objects.count() == 1


# --- resend -------------------------------------------------------------------------------------


def test_resend_sends_the_same_message_again_as_a_new_notification(api_client, anet_sandbox, smtp_server, commit):
    with commit():
        create(api_client, customer_email="again@example.com")
    original = Notification.objects.get()
    with commit():
        response = api_client.post(f"{LIST_URL}/{original.pk}/resend")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["id"] != original.pk and data["resent_from"] == original.pk
    assert (data["kind"], data["recipient"], data["object_id"]) == (
        original.kind,
        original.recipient,
        original.object_id,
    )
    assert data["status"] == "pending"  # answered before the commit; sent right after it
    assert Notification.objects.get(pk=data["id"]).status == "sent"
    assert len(smtp_server.to("again@example.com")) == 2
    assert smtp_server.messages[0].message["Subject"] == smtp_server.messages[1].message["Subject"]
    with commit():
        assert api_client.post(f"{LIST_URL}/{original.pk}/resend").status_code == 200
    assert Notification.objects.filter(resent_from=original).count() == 2
    assert api_client.post(f"{LIST_URL}/{original.pk}/resend", {"x": 1}, format="json").status_code == 400


def test_resend_needs_the_write_scope(make_api_key, api_client, anet_sandbox, commit):
    with commit():
        create(api_client)
    row = Notification.objects.get()
    reader = _client(make_api_key, api_client.merchant, ["notifications:read"])
    assert reader.post(f"{LIST_URL}/{row.pk}/resend").status_code == 403
    assert Notification.objects.count() == 1


def test_resend_honours_idempotency_key(api_client, anet_sandbox, commit):
    with commit():
        create(api_client)
    row = Notification.objects.get()
    with commit():
        first = api_client.post(f"{LIST_URL}/{row.pk}/resend", HTTP_IDEMPOTENCY_KEY="resend-1")
    with commit():
        again = api_client.post(f"{LIST_URL}/{row.pk}/resend", HTTP_IDEMPOTENCY_KEY="resend-1")
    assert first.status_code == again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["data"]["id"] == first.json()["data"]["id"]
    assert Notification.objects.filter(resent_from=row).count() == 1


def test_what_get_returns_can_be_put_back_changed(api_client):
    current = api_client.get(SETTINGS_URL).json()["data"]
    current.update(payment_receipt=False, sender_name="Shop")
    response = api_client.put(SETTINGS_URL, current, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["data"]["payment_receipt"] is False and response.json()["data"]["sender_name"] == "Shop"
