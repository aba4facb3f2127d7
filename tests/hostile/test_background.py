"""The hostile-input layer on the background side: what other systems send back to us.

* webhook receivers answering any status with any bytes (NUL, invalid UTF-8, surrogates, huge);
* Authorize.Net (the emulator playing a hostile processor) answering with hostile text inside a
  well-formed reply, with XML that cannot be parsed, with deeply nested or huge documents;
* inbound notifications, signed, whose fields hold hostile values, then processed by the task.

For each: nothing raises out of the service, nothing unstorable is stored, a delivery ends, and the
API answers no 5xx."""

from __future__ import annotations

import json
import os
from xml.sax.saxutils import escape

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditLog
from payments.inbound import services as inbound_services
from payments.models import Payment
from tests.security.helpers import PAYMENT, create_endpoint
from webhooks import services as webhook_services
from webhooks import signing
from webhooks.models import DeliveryAttempt, EventDelivery, InboundEvent

from .strategies import HOSTILE_CHARS, hostile_text

pytestmark = pytest.mark.django_db

MAX_EXAMPLES = int(os.environ.get("HOSTILE_MAX_EXAMPLES", "10"))
RANDOM = os.environ.get("HOSTILE_RANDOM", "") == "1"
HYPOTHESIS = {
    "deadline": None,
    "derandomize": not RANDOM,
    "database": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
}

hostile_bytes = st.one_of(
    st.binary(max_size=64),
    hostile_text.map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"\x00" * 2048, b"\xed\xa0\x80" * 600, b"x" * 300_000, b"", b"\xff"]),
)


# --- webhook receivers -----------------------------------------------------------------------------


@pytest.fixture
def receiver_endpoint(owner, hostile_receiver):
    return create_endpoint(owner, url=hostile_receiver.url)["id"]


@settings(max_examples=MAX_EXAMPLES * 2, **HYPOTHESIS)
@given(status=st.sampled_from([200, 201, 204, 299, 301, 400, 404, 410, 500, 503]), body=hostile_bytes)
def test_any_receiver_reply_is_recorded_and_moves_the_delivery_on(
    owner, hostile_receiver, receiver_endpoint, status, body
):
    hostile_receiver.status, hostile_receiver.body = status, body if status != 204 else b""
    with transaction.atomic():
        event = webhook_services.event_record(
            merchant_id=owner.merchant.pk, event_type="payment.captured", data={"id": "pay_h", "status": "captured"}
        )
    delivery = EventDelivery.objects.get(event=event, endpoint_id=receiver_endpoint)

    webhook_services.delivery_attempt_run(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert "\x00" not in attempt.response_body and len(attempt.response_body) <= 1024
    if 200 <= status < 300:
        assert delivery.status == EventDelivery.Status.SUCCEEDED and attempt.succeeded
    else:  # retried later, on the schedule (the loop's end is test_findings' retry test)
        assert delivery.status == EventDelivery.Status.PENDING and delivery.next_attempt_at is not None
        assert not attempt.succeeded


# --- Authorize.Net replies -------------------------------------------------------------------------

REPLY_ELEMENTS = [
    "responseCode",
    "transId",
    "authCode",
    "avsResultCode",
    "cvvResultCode",
    "accountNumber",
    "accountType",
    "description",
    "resultCode",
    "code",
    "text",
    "refTransID",
]


def _as_xml_text(text: str, how: str) -> str:
    if how == "escaped":  # well-formed when every character is one XML allows
        return escape(text)
    if how == "charrefs":  # &#x0; and friends: refused by the parser for forbidden characters
        return "".join(f"&#x{ord(c):x};" if c in HOSTILE_CHARS else escape(c) for c in text)
    return text  # raw: may break the document


hostile_documents = st.sampled_from(
    [
        "",
        "not xml at all",
        '<?xml version="1.0"?><createTransactionResponse/>',
        "<a>" * 20_000 + "</a>" * 20_000,
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]><r>&c;&c;&c;</r>',
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
        "\x00\x00\x00",
        "\ud800<x/>",
        '<createTransactionResponse xmlns="AnetApi/xml/v1/schema/AnetApiSchema.xsd"><messages><resultCode>Ok'
        "</resultCode></messages><transactionResponse><responseCode>1</responseCode><transId>"
        + "9" * 9_000_000
        + "</transId></transactionResponse></createTransactionResponse>",
    ]
)


def _charge(owner) -> tuple[int, dict]:
    with transaction.atomic():
        response = owner.post("/api/v1/payments", PAYMENT, format="json")
    return response.status_code, response.json()


def _assert_charge_answer(status: int, body: dict, audited_before: int) -> None:
    # 502: the processor failed us; 503: its circuit breaker is open after several such replies.
    assert status < 500 or status in (502, 503), (status, str(body)[:300])
    assert AuditLog.objects.count() == audited_before + 1
    if status in (201, 402, 502, 503) and body.get("data"):
        stored = Payment.objects.get(pk=body["data"]["id"])
        for name in ("processor_response_code", "processor_transaction_id", "auth_code", "card_brand"):
            assert "\x00" not in getattr(stored, name)


@settings(max_examples=MAX_EXAMPLES * 3, **HYPOTHESIS)
@given(
    element=st.sampled_from(REPLY_ELEMENTS),
    text=hostile_text,
    how=st.sampled_from(["escaped", "escaped", "charrefs", "raw"]),
)
def test_hostile_text_in_a_processor_reply_never_500s_nor_stores_unstorable_text(
    owner, anet_sandbox, element, text, how
):
    anet_sandbox.configure(
        fail_mode="rewrite",
        fail_count=None,
        rewrite=[[rf"(?<=<{element}>)[^<]*(?=</{element}>)", _as_xml_text(text, how)]],
    )
    audited = AuditLog.objects.count()

    status, body = _charge(owner)

    _assert_charge_answer(status, body, audited)


@settings(max_examples=MAX_EXAMPLES, **HYPOTHESIS)
@given(document=hostile_documents)
def test_a_processor_reply_that_is_not_a_usable_document_is_a_clean_502(owner, anet_sandbox, document):
    anet_sandbox.configure(fail_mode="raw", fail_count=None, raw_body=document)
    audited = AuditLog.objects.count()

    status, body = _charge(owner)

    _assert_charge_answer(status, body, audited)
    assert (status, body["error"]["code"]) in ((502, "processor_error"), (503, "service_unavailable"))


# --- inbound notifications -------------------------------------------------------------------------

hostile_notification = st.fixed_dictionaries(
    {"notificationId": hostile_text},
    optional={
        "eventType": st.one_of(hostile_text, st.just("net.authorize.payment.authcapture.created")),
        "payload": st.fixed_dictionaries(
            {},
            optional={
                "id": st.one_of(hostile_text, st.integers()),
                "entityName": st.one_of(hostile_text, st.just("transaction")),
                "invoiceNumber": hostile_text,
                "authAmount": st.one_of(hostile_text, st.floats(allow_nan=False)),
            },
        ),
    },
)


@settings(max_examples=MAX_EXAMPLES * 3, **HYPOTHESIS)
@given(notification=hostile_notification, sign=st.booleans())
def test_a_hostile_notification_is_answered_cleanly_and_processed_without_raising(
    anon_client, anet_sandbox, notification, sign
):
    raw = json.dumps(notification).encode()
    headers = {}
    if sign:
        headers["HTTP_X_ANET_SIGNATURE"] = signing.anet_signature_header(
            raw, django_settings.AUTHORIZE_NET_SIGNATURE_KEY
        )
    audited = AuditLog.objects.count()

    with transaction.atomic():
        response = anon_client.post("/api/v1/webhooks/authorize-net", raw, content_type="application/json", **headers)

    # 400: not a notification (or over the size limit, checked before the signature).
    assert response.status_code in ((200, 400) if sign else (400, 401)), response.content[:300]
    assert AuditLog.objects.count() == audited + 1
    if response.status_code == 200:
        event_id = response.json()["data"]["id"]
        processed = inbound_services.inbound_event_process(event_id=event_id)
        assert processed.status in {s.value for s in InboundEvent.Status}
        assert processed.status != InboundEvent.Status.PROCESSING
