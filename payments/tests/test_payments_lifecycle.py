"""Retrieve, update, capture, refund and cancel: every transition, and every refusal changing nothing."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from payments.models import Payment, PaymentEvent, Refund
from payments.tests.factories import charges, create
from webhooks.models import Event

pytestmark = pytest.mark.django_db


def post(client, payment_id, action, data=None, **headers):
    return client.post(f"/api/v1/payments/{payment_id}/{action}", data or {}, format="json", **headers)


def event_types(merchant):
    return list(Event.objects.filter(merchant=merchant).order_by("created_at").values_list("type", flat=True))


# --- retrieve and isolation ------------------------------------------------------------------------


def test_retrieve_own_payment(api_client, captured):
    response = api_client.get(f"/api/v1/payments/{captured['id']}")
    assert response.status_code == 200
    assert response.json()["data"] == captured


@pytest.mark.parametrize("payment_id", ["not-a-uuid", "123", str(uuid.uuid4())])
def test_malformed_or_unknown_id_is_404(api_client, sandbox, payment_id):
    response = api_client.get(f"/api/v1/payments/{payment_id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_another_merchants_payment_is_404_everywhere(api_client, other_api_client, captured):
    pid = captured["id"]
    api_client.get(f"/api/v1/payments/{pid}")  # warm the owner's cache entry
    assert other_api_client.get(f"/api/v1/payments/{pid}").status_code == 404
    assert other_api_client.patch(f"/api/v1/payments/{pid}", {"description": "x"}, format="json").status_code == 404
    for action in ("capture", "refund", "cancel"):
        assert post(other_api_client, pid, action).status_code == 404
    assert other_api_client.get("/api/v1/payments").json()["data"] == []
    payment = Payment.objects.get(pk=pid)
    assert (payment.status, payment.description, payment.refunded_amount) == ("captured", "Order 1", Decimal("0"))


def test_retrieve_is_cached_and_invalidated_by_writes(api_client, captured):
    pid = captured["id"]
    assert api_client.get(f"/api/v1/payments/{pid}").json()["data"]["description"] == "Order 1"
    api_client.patch(f"/api/v1/payments/{pid}", {"description": "Changed"}, format="json")
    assert api_client.get(f"/api/v1/payments/{pid}").json()["data"]["description"] == "Changed"
    post(api_client, pid, "refund", {"amount": "1.00"})
    assert api_client.get(f"/api/v1/payments/{pid}").json()["data"]["refunded_amount"] == "1.00"


# --- update ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["patch", "put"])
def test_update_changes_only_the_four_fields(api_client, captured, method):
    changes = {
        "description": "New",
        "metadata": {"k": "v"},
        "customer_email": "new@example.com",
        "customer_name": "New Name",
    }
    response = getattr(api_client, method)(f"/api/v1/payments/{captured['id']}", changes, format="json")

    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert {k: data[k] for k in changes} == changes
    assert data["amount"] == captured["amount"] and data["status"] == "captured"


@pytest.mark.parametrize(
    "field_value",
    [
        {"amount": "1.00"},
        {"status": "refunded"},
        {"currency": "EUR"},
        {"customer_id": "other"},
        {"card_last_four": "0000"},
        {"refunded_amount": "0.00"},
        {"nonsense": True},
    ],
)
@pytest.mark.parametrize("method", ["patch", "put"])
def test_update_refuses_other_fields_by_name_and_changes_nothing(api_client, captured, field_value, method):
    data = {"description": "should not apply", **field_value}
    response = getattr(api_client, method)(f"/api/v1/payments/{captured['id']}", data, format="json")

    assert response.status_code == 400
    assert set(field_value) <= set(response.json()["error"]["details"])
    payment = Payment.objects.get(pk=captured["id"])
    assert payment.description == "Order 1" and payment.amount == Decimal("100.00")


def test_update_validates_values(api_client, captured):
    response = api_client.patch(f"/api/v1/payments/{captured['id']}", {"customer_email": "nope"}, format="json")
    assert response.status_code == 400
    assert "customer_email" in response.json()["error"]["details"]


# --- capture ---------------------------------------------------------------------------------------


def test_capture_authorized_in_full(api_client, authorized, sandbox):
    response = post(api_client, authorized["id"], "capture")

    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert (data["status"], data["captured_amount"]) == ("captured", "50.00")
    (tx,) = charges(sandbox)
    assert tx.settle_amount == Decimal("50.00")
    assert event_types(api_client.merchant) == ["payment.authorized", "payment.captured"]
    kinds = list(PaymentEvent.objects.filter(payment_id=authorized["id"]).values_list("kind", flat=True))
    assert kinds[-3:] == ["capture.request", "capture.response", "status_change"]


def test_partial_capture(api_client, authorized):
    response = post(api_client, authorized["id"], "capture", {"amount": "20.00"})
    assert response.status_code == 200
    assert response.json()["data"]["captured_amount"] == "20.00"


@pytest.mark.parametrize(("amount", "status"), [("50.01", 409), ("0", 400), ("abc", 400), (5, 400)])
def test_capture_amount_refusals(api_client, authorized, sandbox, amount, status):
    response = post(api_client, authorized["id"], "capture", {"amount": amount})
    assert response.status_code == status
    assert Payment.objects.get(pk=authorized["id"]).status == "authorized"
    assert charges(sandbox)[0].status == "authorizedPendingCapture"


def test_capture_refuses_unknown_fields(api_client, authorized):
    response = post(api_client, authorized["id"], "capture", {"amount": "1.00", "currency": "USD"})
    assert response.status_code == 400
    assert "currency" in response.json()["error"]["details"]


def test_capture_of_a_captured_payment_is_409_without_a_processor_call(api_client, captured, sandbox):
    before = len(sandbox.state.transactions)
    response = post(api_client, captured["id"], "capture")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_state"
    assert len(sandbox.state.transactions) == before


# --- cancel ----------------------------------------------------------------------------------------


def test_cancel_authorized(api_client, authorized, sandbox):
    response = post(api_client, authorized["id"], "cancel")

    assert response.status_code == 200
    assert response.json()["data"]["status"] == "voided"
    assert charges(sandbox)[0].status == "voided"
    assert event_types(api_client.merchant)[-1] == "payment.voided"
    again = post(api_client, authorized["id"], "cancel")
    assert again.status_code == 409
    assert post(api_client, authorized["id"], "capture").status_code == 409


def test_cancel_unsettled_capture(api_client, sandbox):
    sandbox.configure(settle_delay_seconds=3600)
    payment = create(api_client).json()["data"]

    response = post(api_client, payment["id"], "cancel")

    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["status"] == "voided" and data["captured_amount"] == "0.00"


def test_cancel_of_a_settled_capture_is_409_refund_instead(api_client, captured, sandbox):
    response = post(api_client, captured["id"], "cancel")

    assert response.status_code == 409
    assert "refund" in response.json()["error"]["message"]
    payment = Payment.objects.get(pk=captured["id"])
    assert payment.status == "captured" and payment.settled_at is not None
    assert charges(sandbox)[0].status == "settledSuccessfully"
    # Now known to be settled: a second attempt is refused without asking the processor.
    before = len(sandbox.state.transactions)
    assert post(api_client, captured["id"], "cancel").status_code == 409
    assert len(sandbox.state.transactions) == before


@pytest.mark.parametrize("token", ["tok_declined", "tok_processor_error"])
def test_no_action_on_a_failed_payment(api_client, sandbox, token):
    pid = create(api_client, card_token=token).json()["data"]["id"]
    for action in ("capture", "refund", "cancel"):
        response = post(api_client, pid, action)
        assert response.status_code == 409, action
    assert len(sandbox.state.transactions) == 1


# --- refund ----------------------------------------------------------------------------------------


def test_full_refund_by_default(api_client, captured, sandbox):
    response = post(api_client, captured["id"], "refund", {"reason": "requested_by_customer"})

    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["status"] == "refunded"
    assert (data["refunded_amount"], data["refund_count"]) == ("100.00", 1)
    (refund,) = data["refunds"]
    assert refund["amount"] == "100.00" and refund["status"] == "succeeded"
    assert refund["reason"] == "requested_by_customer"
    (processor_refund,) = charges(sandbox, "refundTransaction")
    assert refund["processor_transaction_id"] == processor_refund.trans_id
    assert processor_refund.amount == Decimal("100.00")
    assert event_types(api_client.merchant) == ["payment.captured", "payment.refunded"]


def test_partial_refunds_then_the_rest(api_client, captured):
    first = post(api_client, captured["id"], "refund", {"amount": "30.00"}).json()["data"]
    assert (first["status"], first["refunded_amount"], first["refund_count"]) == ("partially_refunded", "30.00", 1)
    second = post(api_client, captured["id"], "refund", {"amount": "20.00"}).json()["data"]
    assert (second["status"], second["refunded_amount"], second["refund_count"]) == ("partially_refunded", "50.00", 2)
    over = post(api_client, captured["id"], "refund", {"amount": "50.01"})
    assert over.status_code == 409
    rest = post(api_client, captured["id"], "refund").json()["data"]
    assert (rest["status"], rest["refunded_amount"], rest["refund_count"]) == ("refunded", "100.00", 3)
    assert [r["amount"] for r in rest["refunds"]] == ["30.00", "20.00", "50.00"]
    assert post(api_client, captured["id"], "refund", {"amount": "0.01"}).status_code == 409
    assert event_types(api_client.merchant) == [
        "payment.captured",
        "payment.partially_refunded",
        "payment.partially_refunded",
        "payment.refunded",
    ]


def test_refund_more_than_captured_changes_nothing(api_client, captured, sandbox):
    response = post(api_client, captured["id"], "refund", {"amount": "100.01"})

    assert response.status_code == 409
    payment = Payment.objects.get(pk=captured["id"])
    assert (payment.status, payment.refunded_amount, payment.refund_count) == ("captured", Decimal("0"), 0)
    assert Refund.objects.count() == 0
    assert charges(sandbox, "refundTransaction") == []


@pytest.mark.parametrize("amount", ["0", "-5.00", "1.001", 5, "1e2"])
def test_refund_amount_validation(api_client, captured, amount):
    response = post(api_client, captured["id"], "refund", {"amount": amount})
    assert response.status_code == 400
    assert "amount" in response.json()["error"]["details"]
    assert Refund.objects.count() == 0


def test_refund_of_an_authorization_is_409(api_client, authorized, sandbox):
    assert post(api_client, authorized["id"], "refund").status_code == 409
    assert charges(sandbox, "refundTransaction") == []


def test_refund_before_settlement_is_409_cancel_instead(api_client, sandbox):
    sandbox.configure(settle_delay_seconds=3600)
    pid = create(api_client).json()["data"]["id"]

    response = post(api_client, pid, "refund", {"amount": "5.00"})

    assert response.status_code == 409
    assert "cancel" in response.json()["error"]["message"]
    payment = Payment.objects.get(pk=pid)
    assert (payment.status, payment.refunded_amount) == ("captured", Decimal("0"))
    assert Refund.objects.get().status == "failed"
    assert post(api_client, pid, "refund", {"amount": "100.00"}).status_code == 409  # nothing stays reserved


def test_jpy_refund(api_client, sandbox):
    pid = create(api_client, amount="1000", currency="JPY").json()["data"]["id"]
    assert post(api_client, pid, "refund", {"amount": "1.5"}).status_code == 400
    data = post(api_client, pid, "refund", {"amount": "300"}).json()["data"]
    assert (data["refunded_amount"], data["refunds"][0]["amount"]) == ("300", "300")


# --- list and filters ------------------------------------------------------------------------------


def test_list_is_newest_first_paginated_and_scoped(api_client, other_api_client, sandbox):
    ids = [create(api_client, amount=f"{i}.00").json()["data"]["id"] for i in range(1, 4)]
    create(other_api_client)

    page = api_client.get("/api/v1/payments?limit=2").json()
    assert [p["id"] for p in page["data"]] == ids[::-1][:2]
    assert page["pagination"]["has_more"] is True
    rest = api_client.get(f"/api/v1/payments?limit=2&cursor={page['pagination']['next_cursor']}").json()
    assert [p["id"] for p in rest["data"]] == [ids[0]]
    assert rest["pagination"]["has_more"] is False


def test_filters(api_client, sandbox):
    create(api_client, amount="10.00", customer_id="alice")
    create(api_client, amount="20.00", customer_id="bob", card_token="tok_declined")
    create(api_client, amount="3000", currency="JPY", customer_id="alice")

    def ids(query):
        response = api_client.get(f"/api/v1/payments?{query}")
        assert response.status_code == 200, response.content
        return sorted((p["customer_id"], p["amount"]) for p in response.json()["data"])

    assert ids("status=declined") == [("bob", "20.00")]
    assert ids("customer_id=alice") == [("alice", "10.00"), ("alice", "3000")]
    assert ids("currency=JPY") == [("alice", "3000")]
    assert ids("min_amount=15&max_amount=100") == [("bob", "20.00")]
    assert len(ids("is_test=true")) == 3
    assert ids("is_test=false") == []
    assert len(ids("created_after=2000-01-01T00:00:00Z")) == 3
    assert ids("created_before=2000-01-01T00:00:00Z") == []
    assert ids(f"subscription_id={uuid.uuid4()}") == []


@pytest.mark.parametrize(
    "query",
    [
        "status=bogus",
        "min_amount=abc",
        "max_amount=-1",
        "created_after=yesterday",
        "created_before=2024-13-45",
        "subscription_id=not-a-uuid",
        "is_test=maybe",
        "limit=0",
        "limit=101",
        "cursor=garbage",
        "min_amount=1e400",
    ],
)
def test_invalid_filters_are_400(api_client, sandbox, query):
    response = api_client.get(f"/api/v1/payments?{query}")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "validation_error"
