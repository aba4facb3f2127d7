"""/api/v1/subscriptions: creation, validation, listing, isolation, update, pause/resume/cancel, events."""

from __future__ import annotations

from datetime import timedelta

import pytest

from subscriptions.models import Subscription
from subscriptions.services import utc_today
from webhooks.models import Event

from .factories import SubscriptionFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/subscriptions"


def _body(**overrides):
    body = {
        "customer_id": "cus_123",
        "plan_id": "plan_pro",
        "amount": "29.99",
        "currency": "USD",
        "billing_cycle": "monthly",
        "card_token": "tok_visa",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def _events(merchant, event_type=None):
    qs = Event.objects.filter(merchant=merchant)
    if event_type:
        qs = qs.filter(type=event_type)
    return list(qs.order_by("created_at"))


def test_create_returns_201_with_the_contract_fields(api_client):
    response = api_client.post(URL, _body(metadata={"tier": "pro"}, customer_email="a@b.example"), format="json")
    assert response.status_code == 201, response.content
    data = response.json()["data"]
    today = utc_today().isoformat()
    assert data["status"] == "active"
    assert data["amount"] == "29.99"
    assert data["currency"] == "USD"
    assert data["billing_cycle"] == "monthly"
    assert data["start_date"] == today
    assert data["next_billing_date"] == today
    assert data["payment_method"] == {"type": "test_token", "card_last_four": "1111", "card_brand": "visa"}
    assert data["metadata"] == {"tier": "pro"}
    assert data["is_test"] is True
    assert data["failure_count"] == 0
    assert data["cancelled_at"] is None and data["paused_at"] is None
    assert data["external_id"].startswith("sub_")
    assert set(data) == {
        "id", "external_id", "customer_id", "customer_email", "customer_name", "customer_phone", "plan_id",
        "status",
        "billing_cycle", "amount", "currency", "start_date", "next_billing_date", "current_period_start",
        "current_period_end", "payment_method", "metadata", "is_test", "failure_count", "cancelled_at",
        "paused_at", "created_at", "updated_at",
    }  # fmt: skip
    stored = Subscription.objects.get(pk=data["id"])
    assert stored.merchant_id == api_client.merchant.pk
    assert stored.payment_method["token"] == "tok_visa"  # kept server-side, never shown
    [event] = _events(api_client.merchant, "subscription.created")
    assert event.data == data


def test_create_with_future_start_date_and_jpy(api_client):
    start = utc_today() + timedelta(days=10)
    response = api_client.post(
        URL, _body(amount="1000", currency="JPY", start_date=start.isoformat(), billing_cycle="yearly"), format="json"
    )
    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data["amount"] == "1000"
    assert data["next_billing_date"] == start.isoformat()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"amount": 29.99}, "amount"),
        ({"amount": "-1.00"}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "1.999"}, "amount"),
        ({"amount": "1e3"}, "amount"),
        ({"amount": "10.5", "currency": "JPY"}, "amount"),
        ({"currency": "usd"}, "currency"),
        ({"currency": "XXX"}, "currency"),
        ({"billing_cycle": "fortnightly"}, "billing_cycle"),
        ({"card_token": "tok_nope"}, "card_token"),
        ({"card_token": ""}, "card_token"),
        ({"customer_id": None}, "customer_id"),
        ({"plan_id": None}, "plan_id"),
        ({"start_date": "2020-01-01"}, "start_date"),
        ({"start_date": "not-a-date"}, "start_date"),
        ({"metadata": ["a"]}, "metadata"),
        ({"customer_email": "nope"}, "customer_email"),
        ({"is_test": False}, "is_test"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_create_validation_errors_are_400_with_field_details(api_client, overrides, field):
    response = api_client.post(URL, _body(**overrides), format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["details"], error
    assert Subscription.objects.count() == 0
    assert _events(api_client.merchant) == []


def test_yesterday_is_in_the_past_but_today_is_not(api_client):
    yesterday = (utc_today() - timedelta(days=1)).isoformat()
    assert api_client.post(URL, _body(start_date=yesterday), format="json").status_code == 400
    assert api_client.post(URL, _body(start_date=utc_today().isoformat()), format="json").status_code == 201


def test_live_key_refuses_test_tokens(merchant, make_api_key):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_X_API_KEY=make_api_key(merchant=merchant, mode="live").key)
    response = client.post(URL, _body(card_token="tok_visa"), format="json")
    assert response.status_code == 400
    assert "card_token" in response.json()["error"]["details"]
    assert Subscription.objects.count() == 0


def test_duplicate_external_id_is_400(api_client):
    assert api_client.post(URL, _body(external_id="my-sub-1"), format="json").status_code == 201
    response = api_client.post(URL, _body(external_id="my-sub-1"), format="json")
    assert response.status_code == 400
    assert "external_id" in response.json()["error"]["details"]
    assert Subscription.objects.count() == 1


def test_scopes_are_enforced(merchant, make_api_key):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_X_API_KEY=make_api_key(merchant=merchant, permissions=["subscriptions:read"]).key)
    assert client.get(URL).status_code == 200
    response = client.post(URL, _body(), format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    client.credentials(HTTP_X_API_KEY=make_api_key(merchant=merchant, permissions=["payments:read"]).key)
    assert client.get(URL).status_code == 403
    assert Subscription.objects.count() == 0


def test_get_and_list_are_scoped_to_the_merchant(api_client, other_api_client):
    mine = SubscriptionFactory(merchant=api_client.merchant)
    theirs = SubscriptionFactory(merchant=other_api_client.merchant)
    assert api_client.get(f"{URL}/{mine.pk}").json()["data"]["id"] == str(mine.pk)
    for method in ("get", "patch", "put", "delete"):
        response = getattr(api_client, method)(f"{URL}/{theirs.pk}", {"plan_id": "x"}, format="json")
        assert response.status_code == 404, method
        assert response.json()["error"]["code"] == "not_found"
    for verb in ("pause", "resume"):
        assert api_client.post(f"{URL}/{theirs.pk}/{verb}").status_code == 404
    assert api_client.get(f"{URL}/not-a-uuid").status_code == 404
    assert api_client.post(f"{URL}/not-a-uuid/pause").status_code == 404
    ids = [row["id"] for row in api_client.get(URL).json()["data"]]
    assert ids == [str(mine.pk)]
    theirs.refresh_from_db()
    assert theirs.status == "active" and theirs.plan_id == "plan_basic"


def test_list_filters_and_cursor_pagination(api_client):
    m = api_client.merchant
    a = SubscriptionFactory(merchant=m, customer_id="cus_a", plan_id="gold", billing_cycle="monthly")
    b = SubscriptionFactory(merchant=m, customer_id="cus_b", plan_id="gold", billing_cycle="yearly", status="paused")
    c = SubscriptionFactory(merchant=m, customer_id="cus_a", plan_id="basic", billing_cycle="weekly")

    def ids(query):
        response = api_client.get(URL + query)
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["data"]}

    assert ids("?status=paused") == {str(b.pk)}
    assert ids("?customer_id=cus_a") == {str(a.pk), str(c.pk)}
    assert ids("?plan_id=gold") == {str(a.pk), str(b.pk)}
    assert ids("?billing_cycle=weekly") == {str(c.pk)}
    assert ids("?created_after=2000-01-01") == {str(a.pk), str(b.pk), str(c.pk)}
    assert ids("?created_before=2000-01-01T00:00:00Z") == set()
    bad = api_client.get(URL + "?status=sleeping")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_error"

    first = api_client.get(URL + "?limit=2").json()
    assert len(first["data"]) == 2 and first["pagination"]["has_more"] is True
    second = api_client.get(URL + f"?limit=2&cursor={first['pagination']['next_cursor']}").json()
    assert second["pagination"]["has_more"] is False
    seen = [row["id"] for row in first["data"] + second["data"]]
    assert sorted(seen) == sorted([str(a.pk), str(b.pk), str(c.pk)])
    assert seen[0] == str(c.pk)  # newest first


def test_patch_changes_only_the_allowed_fields(api_client):
    sub = SubscriptionFactory(merchant=api_client.merchant)
    response = api_client.patch(
        f"{URL}/{sub.pk}",
        {"amount": "30.50", "plan_id": "plan_max", "metadata": {"k": "v"}, "card_token": "tok_mastercard"},
        format="json",
    )
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["amount"] == "30.50"
    assert data["plan_id"] == "plan_max"
    assert data["metadata"] == {"k": "v"}
    assert data["payment_method"] == {"type": "test_token", "card_last_four": "0015", "card_brand": "mastercard"}
    [event] = _events(api_client.merchant, "subscription.updated")
    assert event.data == data


@pytest.mark.parametrize(
    "body",
    [
        {"currency": "EUR"},
        {"billing_cycle": "daily"},
        {"status": "active"},
        {"next_billing_date": "2030-01-01"},
        {"amount": "0"},
        {"amount": 10},
        {"card_token": "tok_unknown"},
        {},
    ],
)
def test_update_refuses_other_fields_and_bad_values(api_client, body):
    sub = SubscriptionFactory(merchant=api_client.merchant)
    response = api_client.put(f"{URL}/{sub.pk}", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "validation_error"
    before = Subscription.objects.get(pk=sub.pk)
    assert (before.currency, before.billing_cycle, before.amount, before.status) == ("USD", "monthly", 25, "active")
    assert _events(api_client.merchant) == []


def test_cancelled_subscription_cannot_change(api_client):
    sub = SubscriptionFactory(merchant=api_client.merchant, status="cancelled")
    response = api_client.patch(f"{URL}/{sub.pk}", {"plan_id": "x"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_state"
    assert Subscription.objects.get(pk=sub.pk).plan_id == "plan_basic"


def test_delete_cancels_and_keeps_the_record(api_client):
    sub = SubscriptionFactory(merchant=api_client.merchant)
    response = api_client.delete(f"{URL}/{sub.pk}")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["status"] == "cancelled" and data["cancelled_at"]
    assert api_client.get(f"{URL}/{sub.pk}").json()["data"]["status"] == "cancelled"
    assert [e.type for e in _events(api_client.merchant)] == ["subscription.cancelled"]
    again = api_client.delete(f"{URL}/{sub.pk}")
    assert again.status_code == 409
    for verb in ("pause", "resume"):
        assert api_client.post(f"{URL}/{sub.pk}/{verb}").json()["error"]["code"] == "invalid_state"
    assert len(_events(api_client.merchant)) == 1


def test_pause_and_resume_state_machine(api_client):
    sub = SubscriptionFactory(merchant=api_client.merchant, start_date=utc_today(), next_billing_date=utc_today())
    assert api_client.post(f"{URL}/{sub.pk}/resume").status_code == 409  # not paused
    paused = api_client.post(f"{URL}/{sub.pk}/pause")
    assert paused.status_code == 200
    assert paused.json()["data"]["status"] == "paused" and paused.json()["data"]["paused_at"]
    assert api_client.post(f"{URL}/{sub.pk}/pause").status_code == 409  # already paused
    resumed = api_client.post(f"{URL}/{sub.pk}/resume")
    assert resumed.status_code == 200
    data = resumed.json()["data"]
    assert data["status"] == "active" and data["paused_at"] is None
    assert data["next_billing_date"] == utc_today().isoformat()
    assert [e.type for e in _events(api_client.merchant)] == ["subscription.paused", "subscription.resumed"]


def test_past_due_can_be_paused(api_client):
    sub = SubscriptionFactory(merchant=api_client.merchant, status="past_due", failure_count=1)
    assert api_client.post(f"{URL}/{sub.pk}/pause").json()["data"]["status"] == "paused"


def test_resume_moves_to_the_next_anchor_without_back_billing(api_client):
    today = utc_today()
    start = today - timedelta(days=400)
    sub = SubscriptionFactory(
        merchant=api_client.merchant,
        start_date=start,
        billing_cycle="weekly",
        status="paused",
        next_billing_date=start + timedelta(days=7),
    )
    data = api_client.post(f"{URL}/{sub.pk}/resume").json()["data"]
    nxt = data["next_billing_date"]
    from datetime import date

    nxt = date.fromisoformat(nxt)
    assert today <= nxt < today + timedelta(days=7)
    assert (nxt - start).days % 7 == 0


def test_created_filters_take_real_offsets_and_refuse_garbage(api_client):
    SubscriptionFactory(merchant=api_client.merchant)
    for value in (
        "2000-01-01T00:00:00%2B14:00",
        "2000-01-01T00:00:00-12:00",
        "2000-01-01T05:30:00%2B05:30",
        "2000-01-01",
    ):
        response = api_client.get(f"{URL}?created_after={value}")
        assert response.status_code == 200, (value, response.content)
        assert len(response.json()["data"]) == 1
    for value in ("yesterday", "2000-13-01", "0001-01-01T00:00:00%2B05:00", "2000-01-01T00:00:00-23:00"):
        response = api_client.get(f"{URL}?created_before={value}")
        assert response.status_code == 400, (value, response.content)
        assert "created_before" in response.json()["error"]["details"]


def test_is_test_filter_takes_true_or_false_in_any_case_and_refuses_anything_else(api_client):
    SubscriptionFactory(merchant=api_client.merchant, is_test=True)
    for value, count in (("true", 1), ("TRUE", 1), ("False", 0), ("", 1)):
        response = api_client.get(f"{URL}?is_test={value}")
        assert response.status_code == 200, (value, response.content)
        assert len(response.json()["data"]) == count, value
    for value in ("31341165", "1", "yes", "truee"):
        response = api_client.get(f"{URL}?is_test={value}")
        assert response.status_code == 400, (value, response.content)
        assert "is_test" in response.json()["error"]["details"]
