"""POST /api/v1/payments: every test token's outcome and every kind of bad input (CONTRACT 4, 7)."""

from __future__ import annotations

import pytest

from payments.models import Payment, PaymentEvent
from payments.tests.factories import body, charges, create
from webhooks.models import Event

pytestmark = pytest.mark.django_db

PAYMENT_FIELDS = {
    "id",
    "external_id",
    "amount",
    "currency",
    "status",
    "payment_method",
    "customer_id",
    "customer_email",
    "customer_phone",
    "customer_name",
    "card_last_four",
    "card_brand",
    "description",
    "metadata",
    "processor_response_code",
    "processor_response_message",
    "processor_transaction_id",
    "authorized_amount",
    "captured_amount",
    "refunded_amount",
    "refund_count",
    "refunds",
    "subscription_id",
    "created_at",
    "updated_at",
    "processed_at",
    "settled_at",
    "is_test",
}


def test_purchase_is_captured_with_card_details_events_and_one_charge(api_client, sandbox):
    response = create(api_client)

    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert set(data) == PAYMENT_FIELDS
    assert data["status"] == "captured"
    assert data["amount"] == "25.99"
    assert data["captured_amount"] == "25.99"
    assert data["authorized_amount"] == "25.99"
    assert data["refunded_amount"] == "0.00"
    assert data["refund_count"] == 0
    assert data["refunds"] == []
    assert data["card_last_four"] == "4242"
    assert data["card_brand"] == "visa"
    assert data["processor_response_code"] == "1"
    assert data["external_id"].startswith("pay_")
    assert data["is_test"] is True
    assert data["metadata"] == {"order_id": "o_1"}
    assert data["customer_email"] == "customer@example.com"
    (charge,) = charges(sandbox)
    assert charge.transaction_type == "authCaptureTransaction"
    assert data["processor_transaction_id"] == charge.trans_id
    payment = Payment.objects.get(pk=data["id"])
    assert charge.invoice_number == payment.reference
    kinds = list(PaymentEvent.objects.filter(payment=payment).values_list("kind", "to_status"))
    assert kinds == [("charge.request", "pending"), ("charge.response", ""), ("status_change", "captured")]
    (event,) = Event.objects.filter(merchant=api_client.merchant)
    assert event.type == "payment.captured"
    assert event.data["id"] == data["id"] and event.data["status"] == "captured"


def test_request_log_holds_no_card_token_or_card_number(api_client, sandbox):
    response = create(api_client)
    payment = Payment.objects.get(pk=response.json()["data"]["id"])
    logged = str(list(PaymentEvent.objects.filter(payment=payment).values("request_data", "response_data")))
    assert "tok_visa_4242" not in logged
    assert "4242424242424242" not in logged


def test_authorization_only(api_client, sandbox):
    response = create(api_client, capture=False)

    assert response.status_code == 201
    data = response.json()["data"]
    assert data["status"] == "authorized"
    assert data["authorized_amount"] == "25.99"
    assert data["captured_amount"] == "0.00"
    assert [c.transaction_type for c in charges(sandbox)] == ["authOnlyTransaction"]
    assert list(Event.objects.values_list("type", flat=True)) == ["payment.authorized"]


@pytest.mark.parametrize(
    ("token", "brand", "last_four"),
    [
        ("tok_visa", "visa", "1111"),
        ("tok_mastercard", "mastercard", "0015"),
        ("tok_amex", "amex", "0002"),
        ("tok_discover", "discover", "0012"),
        ("tok_jcb", "jcb", "0017"),
    ],
)
def test_approved_test_tokens(api_client, sandbox, token, brand, last_four):
    response = create(api_client, card_token=token)

    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert (data["status"], data["card_brand"], data["card_last_four"]) == ("captured", brand, last_four)


@pytest.mark.parametrize("token", ["tok_declined", "tok_cvv_mismatch", "tok_expired"])
def test_declines_answer_402_with_the_stored_payment(api_client, sandbox, token):
    response = create(api_client, card_token=token)

    assert response.status_code == 402, response.content
    payload = response.json()
    assert payload["error"]["code"] == "card_declined"
    data = payload["data"]
    assert data["status"] == "declined"
    assert data["processor_response_code"] in ("2", "3")
    assert data["processor_response_message"]
    assert data["captured_amount"] == "0.00"
    payment = Payment.objects.get(pk=data["id"])
    assert payment.status == "declined"
    assert list(Event.objects.values_list("type", flat=True)) == ["payment.declined"]


def test_expired_card_carries_reason_8(api_client, sandbox):
    response = create(api_client, card_token="tok_expired")
    assert response.status_code == 402
    assert Payment.objects.get().processor_reason_code == "8"


def test_held_for_review_is_201_with_status_held(api_client, sandbox):
    response = create(api_client, card_token="tok_held")

    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data["status"] == "held"
    assert data["processor_response_code"] == "4"
    assert data["captured_amount"] == "0.00"
    assert list(Event.objects.values_list("type", flat=True)) == ["payment.held"]


def test_processor_error_is_502_and_the_payment_is_kept_failed(api_client, sandbox):
    response = create(api_client, card_token="tok_processor_error")

    assert response.status_code == 502, response.content
    payload = response.json()
    assert payload["error"]["code"] == "processor_error"
    assert payload["data"]["status"] == "failed"
    assert Payment.objects.get().status == "failed"
    assert list(Event.objects.values_list("type", flat=True)) == ["payment.failed"]


def test_unreachable_processor_is_502_failed(api_client, sandbox, settings):
    from payments.gateways import reset_gateway

    settings.AUTHORIZE_NET_ENDPOINT = "http://127.0.0.1:9/xml/v1/request.api"
    settings.AUTHORIZE_NET_CONNECT_TIMEOUT = 0.5
    reset_gateway()

    response = create(api_client)

    assert response.status_code == 502
    assert response.json()["data"]["status"] == "failed"


def test_open_circuit_is_503_and_nothing_is_charged(api_client, sandbox, settings):
    from payments.gateways import get_gateway

    settings.AUTHORIZE_NET_CIRCUIT_FAILURE_THRESHOLD = 1
    gateway = get_gateway()
    gateway.circuit.record_failure()

    response = create(api_client)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert Payment.objects.get().status == "failed"
    assert charges(sandbox) == []


def test_jpy_amounts_have_no_minor_digits(api_client, sandbox):
    response = create(api_client, amount="1000", currency="JPY")

    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data["amount"] == "1000"
    assert data["refunded_amount"] == "0"


def test_amount_renders_every_minor_digit(api_client, sandbox):
    response = create(api_client, amount="25.9")
    assert response.json()["data"]["amount"] == "25.90"


def test_external_id_is_kept_and_unique_per_merchant(api_client, other_api_client, sandbox):
    assert create(api_client, external_id="order-1").json()["data"]["external_id"] == "order-1"
    duplicate = create(api_client, external_id="order-1")
    assert duplicate.status_code == 400
    assert "external_id" in duplicate.json()["error"]["details"]
    assert create(other_api_client, external_id="order-1").status_code == 201
    assert len(charges(sandbox)) == 2


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"amount": 25.99}, "amount"),
        ({"amount": 25}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "0.00"}, "amount"),
        ({"amount": "-1.00"}, "amount"),
        ({"amount": "1.234"}, "amount"),
        ({"amount": "1e3"}, "amount"),
        ({"amount": ""}, "amount"),
        ({"amount": None}, "amount"),
        ({"amount": " 1.00"}, "amount"),
        ({"amount": "1000000.00"}, "amount"),
        ({"amount": "10.5", "currency": "JPY"}, "amount"),
        ({"amount": ...}, "amount"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "usd"}, "currency"),
        ({"currency": ...}, "currency"),
        ({"card_token": ...}, "card_token"),
        ({"card_token": ""}, "card_token"),
        ({"card_token": "tok_unknown"}, "card_token"),
        ({"card_token": "opaque-nonce-from-accept-js"}, "card_token"),
        ({"surprise": 1}, "surprise"),
        ({"status": "captured"}, "status"),
        ({"metadata": ["not", "an", "object"]}, "metadata"),
        ({"capture": "yes"}, "capture"),
        ({"is_test": False}, "is_test"),
        ({"customer_email": "not-an-email"}, "customer_email"),
        ({"payment_method": "bitcoin"}, "payment_method"),
    ],
)
def test_bad_input_is_400_naming_the_field_and_stores_nothing(api_client, sandbox, overrides, field):
    response = create(api_client, **overrides)

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["details"]
    assert Payment.objects.count() == 0
    assert charges(sandbox) == []
    assert Event.objects.count() == 0


def test_body_that_is_not_an_object_is_400(api_client, sandbox):
    response = api_client.post("/api/v1/payments", ["x"], format="json")
    assert response.status_code == 400
    assert Payment.objects.count() == 0


def test_live_key_refuses_test_tokens_before_storing_anything(live_client, sandbox):
    response = live_client.post("/api/v1/payments", body(), format="json")

    assert response.status_code == 400
    assert "card_token" in response.json()["error"]["details"]
    assert Payment.objects.count() == 0
    assert charges(sandbox) == []


def test_live_key_refuses_is_test_true(live_client, sandbox):
    response = live_client.post("/api/v1/payments", body(is_test=True), format="json")
    assert response.status_code == 400
    assert "is_test" in response.json()["error"]["details"]


def test_is_test_matching_the_key_is_accepted(api_client, sandbox):
    assert create(api_client, is_test=True).status_code == 201


def test_credentials_and_scopes(anon_client, make_api_key, merchant, sandbox):
    from rest_framework.test import APIClient

    assert anon_client.post("/api/v1/payments", body(), format="json").status_code == 401
    reader = APIClient()
    reader.credentials(HTTP_X_API_KEY=make_api_key(merchant=merchant, permissions=["payments:read"]).key)
    response = reader.post("/api/v1/payments", body(), format="json")
    assert response.status_code == 403
    assert reader.get("/api/v1/payments").status_code == 200
    assert Payment.objects.count() == 0
