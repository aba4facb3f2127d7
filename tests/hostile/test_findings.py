"""One test per hostile-input finding: each failed (a 500, a lost audit row, an endless delivery,
a charge of "5\\n") before its fix. The general layer (every operation, every field) is
``test_api_surface.py`` and ``test_background.py``."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.models import AuditLog
from payments.models import Payment, Refund
from subscriptions.models import Subscription
from tests.security.helpers import PAYMENT, SUBSCRIPTION, create_endpoint, create_payment, create_subscription
from webhooks import services as webhook_services
from webhooks import signing
from webhooks.models import DeliveryAttempt, Event, EventDelivery, InboundEvent

pytestmark = pytest.mark.django_db

INBOUND = "/api/v1/webhooks/authorize-net"


def send(client, method, path, body=None, **extra):
    """One request in its own savepoint, the body sent as given (str or bytes, not re-encoded)."""
    with transaction.atomic():
        if body is None:
            return client.generic(method.upper(), path, **extra)
        return client.generic(method.upper(), path, body, content_type="application/json", **extra)


def audit_rows(path_fragment: str = "") -> int:
    rows = AuditLog.objects.all()
    return sum(1 for row in rows if path_fragment in json.dumps((row.request_data or {}).get("path", "")))


# --- inbound Authorize.Net notifications ---------------------------------------------------------

DEEP = b"[" * 1000 + b"]" * 1000
HOSTILE_NOTIFICATIONS = {
    "raw-nul": b'{"notificationId":"n-\x00-1","eventType":"net.authorize.payment.authcapture.created"}',
    "escaped-nul": b'{"notificationId":"n-\\u0000-2","eventType":"net.authorize.payment.authcapture.created"}',
    "lone-surrogate-id": b'{"notificationId":"\\ud800","eventType":"net.authorize.payment.authcapture.created"}',
    "surrogate-in-payload": b'{"notificationId":"n-4","payload":{"id":"\\udfff","note":"a\\u0000b"}}',
    "deep-arrays": DEEP,
    "deep-object": b'{"notificationId":"n-6","payload":' + b'{"a":' * 900 + b"1" + b"}" * 900 + b"}",
    "invalid-utf8": b'{"notificationId":"n-7\xff\xfe"}',
}


def _signature(raw: bytes, mode: str) -> dict:
    if mode == "missing":
        return {}
    if mode == "bad":
        return {"HTTP_X_ANET_SIGNATURE": "sha512=" + "0" * 128}
    return {"HTTP_X_ANET_SIGNATURE": signing.anet_signature_header(raw, settings.AUTHORIZE_NET_SIGNATURE_KEY)}


@pytest.mark.parametrize("mode", ["missing", "bad", "valid"])
@pytest.mark.parametrize("name", sorted(HOSTILE_NOTIFICATIONS))
def test_hostile_inbound_notification_is_never_a_500(anon_client, name, mode):
    raw = HOSTILE_NOTIFICATIONS[name]
    before = InboundEvent.objects.count()

    response = send(anon_client, "post", INBOUND, raw, **_signature(raw, mode))

    assert response.status_code < 500, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    if mode != "valid":
        assert response.status_code == 401
        forensic = InboundEvent.objects.get(signature_valid=False)  # the record of the refusal is kept
        assert "\x00" not in forensic.raw_body and "\x00" not in forensic.event_id
    elif response.status_code == 200:
        event = InboundEvent.objects.get(signature_valid=True)
        assert event.event_id and "\x00" not in event.event_id
        assert json.dumps(event.payload)  # storable, encodable
    else:
        assert response.status_code == 400
        assert InboundEvent.objects.count() == before
    assert audit_rows("authorize-net") == 1


def test_signed_notification_with_nul_and_surrogate_is_stored_escaped_and_deduplicated(anon_client):
    raw = HOSTILE_NOTIFICATIONS["lone-surrogate-id"]
    first = send(anon_client, "post", INBOUND, raw, **_signature(raw, "valid"))
    again = send(anon_client, "post", INBOUND, raw, **_signature(raw, "valid"))

    assert first.status_code == 200 and again.status_code == 200
    assert again.json()["data"]["duplicate"] is True
    event = InboundEvent.objects.get(signature_valid=True)
    assert event.event_id == "\\ud800"


# --- the strict parser: what cannot be stored is 400 ---------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/payments", {**PAYMENT, "metadata": {"note": "\ud800"}}),
        ("/api/v1/payments", {**PAYMENT, "description": "a\udfffb"}),
        ("/api/v1/subscriptions", {**SUBSCRIPTION, "metadata": {"note": "\ud800"}}),
        ("/api/v1/subscriptions", {**SUBSCRIPTION, "customer_name": "x\ud83d"}),
    ],
)
@pytest.mark.parametrize("idempotency", [False, True])
def test_lone_surrogate_in_a_json_string_is_400_and_stores_nothing(owner, anet_sandbox, path, body, idempotency):
    raw = json.dumps(body)  # ensure_ascii: the surrogate travels as its \\uXXXX escape
    extra = {"HTTP_IDEMPOTENCY_KEY": "surrogate-key-1"} if idempotency else {}

    response = send(owner, "post", path, raw, **extra)

    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"]["code"] == "validation_error"
    assert Payment.objects.count() == 0 and Subscription.objects.count() == 0 and Event.objects.count() == 0
    assert AuditLog.objects.filter(status_code=400).count() == 1


def test_idempotency_fingerprint_never_raises_on_surrogates():
    from core.idempotency import request_fingerprint

    assert len(request_fingerprint(method="POST", path="/api/v1/payments", body={"a": "\ud800"})) == 64


def test_idempotency_key_with_a_control_character_is_400(owner, anet_sandbox):
    response = send(owner, "post", "/api/v1/payments", json.dumps(PAYMENT), HTTP_IDEMPOTENCY_KEY="key\x00one")

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]["details"]
    assert Payment.objects.count() == 0


# --- the audit trail: a row for every request, whatever its bytes ----------------------------------

SURROGATE_BODY = '{"ignored": "\\ud800", "also": "\\u0000"}'


def _audited(owner, method, path, expected_status):
    before = AuditLog.objects.count()
    response = send(owner, method, path, SURROGATE_BODY)
    assert response.status_code == expected_status, response.content[:300]
    assert AuditLog.objects.count() == before + 1
    row = AuditLog.objects.order_by("-created_at").first()
    assert row.status_code == expected_status
    return row


def test_api_key_revocation_with_a_hostile_ignored_body_is_audited(owner, make_api_key):
    other = make_api_key(merchant=owner.merchant, name="to revoke")
    row = _audited(owner, "delete", f"/api/v1/auth/api-keys/{other.api_key.pk}", 200)
    assert row.request_data["body"] == {"ignored": "\\ud800", "also": "\\u0000"}


def test_subscription_pause_and_cancel_with_a_hostile_ignored_body_are_audited(owner, anet_sandbox):
    sub = create_subscription(owner)
    _audited(owner, "post", f"/api/v1/subscriptions/{sub['id']}/pause", 200)
    _audited(owner, "delete", f"/api/v1/subscriptions/{sub['id']}", 200)


def test_webhook_endpoint_delete_with_a_hostile_ignored_body_is_audited(owner):
    endpoint = create_endpoint(owner)
    _audited(owner, "delete", f"/api/v1/webhooks/{endpoint['id']}", 204)


@pytest.mark.parametrize("path", ["/api/v1/payments/%00", "/api/v1/payments/a%00b/refund", "/api/v1/%00"])
def test_nul_in_the_path_is_audited(owner, path):
    before = AuditLog.objects.count()
    response = send(owner, "get" if path.count("/") < 5 else "post", path)
    assert response.status_code in (404, 405)
    assert AuditLog.objects.count() == before + 1
    assert "\\u0000" in AuditLog.objects.order_by("-created_at").first().request_data["path"]


def test_the_writer_stores_a_row_the_database_refuses_in_a_minimal_form(db):
    from audit import writer

    row = AuditLog(service_name="api", action="x.y", request_data={"bad": "\x00"}, correlation_id="req_1")
    writer.write_rows([row, AuditLog(service_name="api", action="ok.row", correlation_id="req_2")])

    stored = {r.action: r for r in AuditLog.objects.all()}
    assert set(stored) == {"x.y", "ok.row"}
    assert stored["x.y"].request_data == {"_unstorable": "The request data could not be stored."}


# --- outbound webhooks: a hostile reply is recorded, the delivery ends ------------------------------


def _deliver(owner, hostile_receiver):
    endpoint = create_endpoint(owner, url=hostile_receiver.url)
    with transaction.atomic():
        event = webhook_services.event_record(
            merchant_id=owner.merchant.pk, event_type="payment.captured", data={"id": "pay_x", "status": "captured"}
        )
    delivery = EventDelivery.objects.get(event=event, endpoint_id=endpoint["id"])
    webhook_services.delivery_attempt_run(delivery_id=delivery.pk)
    return EventDelivery.objects.get(pk=delivery.pk)


@pytest.mark.parametrize(
    "body",
    [b'{"ok":true}\x00\x00', b"\xff\xfe\xed\xa0\x80 not utf-8", b"\x00" * 5000, b"x" * 200_000],
    ids=["nul", "invalid-utf8", "nul-5k", "huge"],
)
def test_a_2xx_with_a_hostile_body_is_stored_and_the_delivery_succeeds(owner, hostile_receiver, body):
    hostile_receiver.body = body

    delivery = _deliver(owner, hostile_receiver)

    assert delivery.status == EventDelivery.Status.SUCCEEDED
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.succeeded and "\x00" not in attempt.response_body
    assert len(attempt.response_body) <= 1024
    assert hostile_receiver.hits == 1


def test_a_failing_receiver_with_hostile_bodies_ends_the_retry_loop(owner, hostile_receiver):
    hostile_receiver.status, hostile_receiver.body = 500, b"\x00boom\xed\xa0\x80"
    delivery = _deliver(owner, hostile_receiver)
    schedule = len(settings.WEBHOOK_RETRY_SCHEDULE_SECONDS)

    for _ in range(schedule + 5):  # a bounded loop: the delivery must end well before this does
        if EventDelivery.objects.get(pk=delivery.pk).status != EventDelivery.Status.PENDING:
            break
        EventDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
        for due in webhook_services.deliveries_due():
            webhook_services.delivery_attempt_run(delivery_id=due)

    delivery.refresh_from_db()
    assert delivery.status == EventDelivery.Status.FAILED
    assert DeliveryAttempt.objects.filter(delivery=delivery).count() == delivery.attempt_count == schedule + 1
    assert hostile_receiver.hits == schedule + 1
    assert webhook_services.deliveries_due() == []


# --- amounts and currencies: ASCII digits, the whole string, nothing trimmed -----------------------

BAD_AMOUNTS = ["5\n", "5 ", " 5", "\u0665", "\uff15", "\u096b", "1\u0660.00", "５.00", "5.0\n", "\n5"]


@pytest.mark.parametrize("amount", BAD_AMOUNTS, ids=repr)
def test_non_ascii_or_padded_amount_is_400_everywhere(owner, anet_sandbox, amount):
    payment = create_payment(owner, capture=False)
    captured = create_payment(owner)
    sub = create_subscription(owner)
    payments_before, refunds_before = Payment.objects.count(), Refund.objects.count()
    attempts = [
        ("post", "/api/v1/payments", {**PAYMENT, "amount": amount}),
        ("post", f"/api/v1/payments/{payment['id']}/capture", {"amount": amount}),
        ("post", f"/api/v1/payments/{captured['id']}/refund", {"amount": amount}),
        ("post", "/api/v1/subscriptions", {**SUBSCRIPTION, "amount": amount}),
        ("patch", f"/api/v1/subscriptions/{sub['id']}", {"amount": amount}),
    ]
    for method, path, body in attempts:
        response = send(owner, method, path, json.dumps(body))
        assert response.status_code == 400, (path, response.content[:300])
        assert "amount" in response.json()["error"]["details"], (path, response.json())
    assert (Payment.objects.count(), Refund.objects.count()) == (payments_before, refunds_before)
    assert Payment.objects.get(pk=payment["id"]).status == "authorized"
    assert str(Subscription.objects.get(pk=sub["id"]).amount) == "19.99"
    for name in ("min_amount", "max_amount"):
        response = owner.get("/api/v1/payments", {name: amount})
        assert response.status_code == 400, (name, response.content[:300])


@pytest.mark.parametrize("currency", ["USD ", " USD", "USD\n", "usd", "ＵＳＤ"], ids=repr)
def test_padded_or_lookalike_currency_is_400(owner, anet_sandbox, currency):
    for path, body in (("/api/v1/payments", PAYMENT), ("/api/v1/subscriptions", SUBSCRIPTION)):
        response = send(owner, "post", path, json.dumps({**body, "currency": currency}))
        assert response.status_code == 400, (path, response.content[:300])
        assert "currency" in response.json()["error"]["details"]
    assert Payment.objects.count() == 0 and Subscription.objects.count() == 0


def test_plain_amount_filters_still_work(owner, anet_sandbox):
    create_payment(owner, amount="20.00")
    listed = owner.get("/api/v1/payments", {"min_amount": "15", "max_amount": "20.00"}).json()["data"]
    assert [p["amount"] for p in listed] == ["20.00"]
    assert owner.get("/api/v1/payments", {"min_amount": "0"}).status_code == 200
    assert owner.get("/api/v1/payments", {"min_amount": "1.234"}).status_code == 400


# --- characters XML cannot carry: 400 before anything is stored ------------------------------------

XML_FORBIDDEN = ["\x01", "\x0b", "\x0c", "\x1f", "\ufffe", "\uffff", "\x08"]
PROCESSOR_FIELDS = ["description", "customer_name", "customer_id", "external_id"]


@pytest.mark.parametrize("char", XML_FORBIDDEN, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("field", PROCESSOR_FIELDS)
def test_xml_forbidden_character_in_a_payment_field_is_400_before_anything_is_stored(owner, anet_sandbox, field, char):
    response = send(owner, "post", "/api/v1/payments", json.dumps({**PAYMENT, field: f"ab{char}cd"}))

    assert response.status_code == 400, response.content[:300]
    assert field in response.json()["error"]["details"]
    assert Payment.objects.count() == 0 and Event.objects.count() == 0
    assert anet_sandbox.state.snapshot() == []  # nothing reached the processor


@pytest.mark.parametrize("field", ["customer_name", "customer_id", "plan_id"])
def test_xml_forbidden_character_in_a_subscription_field_is_400(owner, anet_sandbox, field):
    response = send(owner, "post", "/api/v1/subscriptions", json.dumps({**SUBSCRIPTION, field: "x\x01y"}))

    assert response.status_code == 400
    assert Subscription.objects.count() == 0 and Payment.objects.count() == 0


def test_tab_newline_and_other_unicode_stay_accepted(owner, anet_sandbox):
    payment = create_payment(owner, description="line one\n\tline two \u202e bidi \u0085 c1 \U0001f600")
    assert payment["description"].startswith("line one\n\tline two")


# --- the replay endpoint ---------------------------------------------------------------------------


@pytest.mark.parametrize("webhook_id", ["%00", "a%00b", "%ED%A0%80", "x" * 300])
def test_replay_of_an_unstorable_id_is_404(owner, webhook_id):
    response = send(owner, "post", f"/api/v1/webhooks/authorize-net/replay/{webhook_id}")
    assert response.status_code == 404, response.content[:300]


# --- found by the hostile layer, beyond the list -------------------------------------------


def test_a_body_of_raw_surrogate_bytes_still_gets_its_audit_row(owner):
    """``json.loads`` on bytes decodes with surrogatepass: the bytes ED A0 80 became a lone surrogate
    in the audited body, and jsonb refused the row (every POST/PUT/PATCH/DELETE lost it)."""
    endpoint = create_endpoint(owner)
    before = AuditLog.objects.count()

    response = send(owner, "post", f"/api/v1/webhooks/{endpoint['id']}/rotate-secret", b'{"a": "\xed\xa0\x80"}')

    assert response.status_code == 400
    assert AuditLog.objects.count() == before + 1


def test_a_413_gets_its_audit_row(owner):
    """The body-size guard answered before the audit middleware ran."""
    before = AuditLog.objects.count()
    response = send(owner, "post", "/api/v1/payments", b"{}", CONTENT_LENGTH=str(10 * 1024 * 1024))

    assert response.status_code == 413
    assert AuditLog.objects.count() == before + 1
    assert AuditLog.objects.order_by("-created_at").first().status_code == 413


@pytest.mark.parametrize(
    ("element", "value"),
    [("accountType", "Visa" * 40), ("transId", "7" * 400), ("responseCode", "1" * 40), ("code", "I" * 40)],
)
def test_an_overlong_value_in_a_processor_reply_is_cut_not_a_500(owner, anet_sandbox, element, value):
    """A reply value longer than its column (card brand 50, transaction id 255, codes 10) was a
    DataError: a 500 after the charge was made."""
    pattern = rf"(?<=<{element}>)[^<]*(?=</{element}>)"
    anet_sandbox.configure(fail_mode="rewrite", fail_count=1, rewrite=[[pattern, value]])

    response = send(owner, "post", "/api/v1/payments", json.dumps(PAYMENT))

    assert response.status_code in (201, 402, 502), response.content[:300]
    payment = Payment.objects.get()
    assert len(payment.card_brand) <= 50 and len(payment.processor_transaction_id) <= 255
