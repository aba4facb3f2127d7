"""The emulator posts Authorize.Net-shaped, signed webhooks to a receiver, retrying failures."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from payments.gateways import ChargeRequest, get_gateway


class Receiver:
    """A tiny local webhook endpoint that records raw bodies and answers from a script of statuses."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict, bytes]] = []
        self.statuses: list[int] = []  # answers to give, in order; 200 once exhausted
        self.delay = 0.0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(receiver.delay)
                with receiver.lock:
                    receiver.requests.append((dict(self.headers), body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks/anet"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def events(self) -> list[dict]:
        with self.lock:
            return [json.loads(body) for _, body in self.requests]


@pytest.fixture
def receiver(anet_sandbox):
    r = Receiver()
    anet_sandbox.configure(webhook_url=r.url)
    yield r
    r.httpd.shutdown()
    r.httpd.server_close()


def charge(token="tok_visa", amount="10.00", capture=True):
    return get_gateway().charge(
        ChargeRequest(
            amount=Decimal(amount),
            currency="USD",
            capture=capture,
            reference="w_" + uuid.uuid4().hex[:12],
            card_token=token,
        )
    )


def verify(headers: dict, body: bytes, key: str) -> bool:
    """What a receiver does: HMAC-SHA512 of the raw body, keyed with the key's literal text."""
    scheme, _, received = headers["X-ANET-Signature"].partition("=")
    expected = hmac.new(key.encode(), body, hashlib.sha512).hexdigest()
    return scheme.lower() == "sha512" and hmac.compare_digest(received.lower(), expected)


def test_each_transaction_posts_a_signed_notification(anet_sandbox, receiver, settings):
    anet_sandbox.configure(settle_delay_seconds=3600)
    sale = charge(amount="10.00")
    auth = charge(capture=False, amount="20.00")
    get_gateway().capture(transaction_id=auth.transaction_id, amount=Decimal("15.00"))
    anet_sandbox.state.settle()
    get_gateway().refund(transaction_id=sale.transaction_id, amount=Decimal("4.00"), card_last_four="1111")
    void_me = charge(capture=False)
    get_gateway().void(transaction_id=void_me.transaction_id)
    held = charge("tok_held")

    assert anet_sandbox.webhooks.flush(timeout=5)

    assert [e["eventType"] for e in receiver.events()] == [
        "net.authorize.payment.authcapture.created",
        "net.authorize.payment.authorization.created",
        "net.authorize.payment.priorAuthCapture.created",
        "net.authorize.payment.refund.created",
        "net.authorize.payment.authorization.created",
        "net.authorize.payment.void.created",
        "net.authorize.payment.fraud.held",
    ]
    for headers, body in receiver.requests:
        assert headers["Content-Type"] == "application/json"
        assert headers["X-ANET-Signature"].startswith("sha512=")
        assert headers["X-ANET-Signature"][7:].isupper()
        assert verify(headers, body, settings.AUTHORIZE_NET_SIGNATURE_KEY)
        assert not verify(headers, body + b"\n", settings.AUTHORIZE_NET_SIGNATURE_KEY)
    _, first_body = receiver.requests[0]
    assert b'"authAmount":10.00' in first_body  # amounts as numbers with two decimals, like the real thing
    first = json.loads(first_body)
    assert first["webhookId"] == anet_sandbox.webhooks.webhook_id
    assert uuid.UUID(first["notificationId"])
    assert first["eventDate"].endswith("Z")
    payload = first["payload"]
    assert (payload["entityName"], payload["id"], payload["responseCode"]) == ("transaction", sale.transaction_id, 1)
    assert payload["authCode"] == sale.auth_code
    assert payload["invoiceNumber"] == anet_sandbox.state.transaction(sale.transaction_id).invoice_number
    assert receiver.events()[2]["payload"]["authAmount"] == 15.0
    assert receiver.events()[-1]["payload"]["id"] == held.transaction_id
    assert receiver.events()[-1]["payload"]["fraudList"] == [{"fraudFilter": "Amount Filter", "fraudAction": "hold"}]


def test_declines_are_notified_with_their_response_code(anet_sandbox, receiver):
    charge("tok_declined")

    assert anet_sandbox.webhooks.flush(timeout=5)

    [event] = receiver.events()
    assert event["eventType"] == "net.authorize.payment.authcapture.created"
    assert event["payload"]["responseCode"] == 2


def test_failed_deliveries_are_retried_with_the_same_notification(anet_sandbox, receiver):
    receiver.statuses = [500]

    charge()

    assert anet_sandbox.webhooks.flush(timeout=5)
    first, second = receiver.events()
    assert first == second  # same body, same notificationId
    assert [d["attempt"] for d in anet_sandbox.webhooks.deliveries] == [1, 2]
    assert [d["delivered"] for d in anet_sandbox.webhooks.deliveries] == [False, True]


def test_webhooks_never_delay_the_api_reply(anet_sandbox, receiver):
    receiver.delay = 1.0

    started = time.monotonic()
    assert charge().approved

    assert time.monotonic() - started < 0.8
    assert anet_sandbox.webhooks.flush(timeout=5)
    assert len(receiver.requests) == 1


def test_no_webhook_url_means_no_notifications(anet_sandbox):
    charge()

    assert anet_sandbox.webhooks.flush(timeout=1)
    assert anet_sandbox.webhooks.deliveries == []
