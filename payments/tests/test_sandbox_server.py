"""The emulator as a server: runtime controls, settlement, review, persistence and concurrency."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
import requests

from payments.gateways import ChargeRequest, Outcome, get_gateway
from payments.gateways.authorize_net import AuthorizeNetConfig, AuthorizeNetGateway
from payments.gateways.sandbox import SandboxServer


def ref() -> str:
    return "s_" + uuid.uuid4().hex[:16]


def charge(token="tok_visa", amount="10.00", capture=True, gateway=None, reference=None):
    return (gateway or get_gateway()).charge(
        ChargeRequest(
            amount=Decimal(amount),
            currency="USD",
            capture=capture,
            reference=reference or ref(),
            card_token=token,
        )
    )


def control(server, action, payload=None, method="post"):
    response = requests.request(method, f"{server.base_url}/_emulator/{action}", json=payload, timeout=5)
    return response.status_code, response.json()


# --- runtime controls ------------------------------------------------------------------------------


def test_config_can_be_read_and_changed_over_http(anet_sandbox):
    status, config = control(anet_sandbox, "config", method="get")
    assert status == 200
    assert (config["latency_ms"], config["fail_mode"], config["settle_delay_seconds"]) == (0, None, 0.0)
    assert config["url"] == anet_sandbox.url

    status, config = control(anet_sandbox, "config", {"latency_ms": 5, "fail_mode": "http500", "fail_count": 1})
    assert (status, config["latency_ms"], config["fail_mode"], config["fail_count"]) == (200, 5, "http500", 1)

    assert charge().outcome is Outcome.UNKNOWN  # the one failure
    assert charge().approved  # fail_count used up
    assert control(anet_sandbox, "config", method="get")[1]["fail_mode"] is None

    assert control(anet_sandbox, "config", {"fail_mode": "explode"})[0] == 400
    assert control(anet_sandbox, "config", {"no_such_option": 1})[0] == 400
    assert control(anet_sandbox, "health", method="get") == (200, {"status": "ok"})


def test_transactions_endpoint_shows_masked_cards_only(anet_sandbox):
    reference = ref()
    sale = charge(reference=reference)

    status, rows = control(anet_sandbox, "transactions", method="get")

    assert status == 200
    [row] = rows
    assert (row["trans_id"], row["invoice_number"], row["amount"]) == (sale.transaction_id, reference, "10.00")
    assert row["account_number"] == "XXXX1111"
    assert "4111111111111111" not in str(rows)


def test_settle_and_reset_over_http(anet_sandbox):
    anet_sandbox.configure(settle_delay_seconds=3600)
    sale = charge()
    assert anet_sandbox.state.transaction(sale.transaction_id).status == "capturedPendingSettlement"

    status, body = control(anet_sandbox, "settle")

    assert status == 200 and body["batch_id"]
    assert anet_sandbox.state.transaction(sale.transaction_id).batch_id == body["batch_id"]
    assert control(anet_sandbox, "settle")[1] == {"batch_id": None}  # nothing left to settle

    assert control(anet_sandbox, "reset") == (200, {"status": "reset"})
    assert anet_sandbox.state.snapshot() == []
    assert anet_sandbox.state.settle_delay_seconds == 0.0


def test_a_settle_delay_settles_in_the_background(anet_sandbox):
    # A delay long enough that the first look comes before it on a loaded machine, short enough to wait.
    anet_sandbox.configure(settle_delay_seconds=2)
    sale = charge()
    auth = charge(capture=False)
    assert anet_sandbox.state.transaction(sale.transaction_id).status == "capturedPendingSettlement"

    deadline = time.monotonic() + 30
    while anet_sandbox.state.transaction(sale.transaction_id).status != "settledSuccessfully":
        assert time.monotonic() < deadline, "not settled in time"
        time.sleep(0.05)

    assert anet_sandbox.state.transaction(auth.transaction_id).status == "authorizedPendingCapture"


def test_held_transactions_can_be_approved_or_declined_in_review(anet_sandbox):
    approve, decline = charge("tok_held"), charge("tok_held", capture=False)

    status, approved = control(anet_sandbox, "review", {"transaction_id": approve.transaction_id, "action": "approve"})
    _, declined = control(anet_sandbox, "review", {"transaction_id": decline.transaction_id, "action": "decline"})

    assert (status, approved["status"]) == (200, "settledSuccessfully")
    assert declined["status"] == "declined"
    again = control(anet_sandbox, "review", {"transaction_id": approve.transaction_id, "action": "approve"})
    assert again[0] == 404
    assert get_gateway().transaction_details(transaction_id=decline.transaction_id).status == "declined"


def test_unsettled_list_filters_pending_approval(anet_sandbox):
    from payments.gateways.sandbox.state import HELD

    charge("tok_held")
    charge(capture=False)

    assert [t.status for t in anet_sandbox.state.unsettled(pending_approval_only=True)] == [HELD]
    assert len(anet_sandbox.state.unsettled()) == 2


def test_the_behaviour_taken_for_a_call_is_not_changed_by_a_later_configure(anet_sandbox):
    anet_sandbox.configure(fail_mode="rewrite", rewrite=[["Ok", "Fine"]], fail_count=2)
    taken = anet_sandbox.take_fault()

    anet_sandbox.configure(latency_ms=7, rewrite=[["Error", "Oops"]], fail_mode=None)

    assert (taken.fail_mode, taken.rewrite, taken.latency_ms) == ("rewrite", [["Ok", "Fine"]], 0)
    current = anet_sandbox.take_fault()
    assert (current.fail_mode, current.rewrite, current.latency_ms) == (None, [["Error", "Oops"]], 7)


# --- concurrency -----------------------------------------------------------------------------------


def test_twenty_concurrent_clients_are_served_in_parallel(anet_sandbox):
    anet_sandbox.configure(latency_ms=300)
    start = threading.Barrier(20)

    def client(n):
        gateway = AuthorizeNetGateway(
            AuthorizeNetConfig(
                api_login_id=anet_sandbox.state.api_login_id,
                transaction_key=anet_sandbox.state.transaction_key,
                endpoint=anet_sandbox.url,
            )
        )
        start.wait()
        return charge(amount=f"{n + 1}.00", gateway=gateway)

    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(client, range(20)))
    elapsed = time.monotonic() - began

    assert all(r.approved for r in results)
    assert len({r.transaction_id for r in results}) == 20
    assert elapsed < 20 * 0.3 / 2  # far less than one after another
    ids = sorted(int(r.transaction_id) for r in results)
    assert ids == list(range(ids[0], ids[0] + 20))  # numeric, increasing, no gaps or repeats


# --- persistence -----------------------------------------------------------------------------------


def test_sqlite_persistence_survives_a_restart(tmp_path):
    db = str(tmp_path / "anet.db")
    credentials = {"api_login_id": "persist", "transaction_key": "persist-key"}

    def gateway_for(server):
        return AuthorizeNetGateway(AuthorizeNetConfig(endpoint=server.url, **credentials))

    with SandboxServer(db_path=db, settle_delay_seconds=3600, **credentials) as first:
        gateway = gateway_for(first)
        sale = charge(gateway=gateway, amount="42.00")
        profile = gateway.customer_profile_create(customer_id="p1", email="", card_token="tok_jcb", is_test=True)

    with SandboxServer(db_path=db, **credentials) as second:
        gateway = gateway_for(second)
        details = gateway.transaction_details(transaction_id=sale.transaction_id)
        assert (details.status, details.settle_amount) == ("capturedPendingSettlement", Decimal("42.00"))
        by_profile = gateway.charge(
            ChargeRequest(
                amount=Decimal("1.00"),
                currency="USD",
                capture=False,
                reference=ref(),
                customer_profile_id=profile.customer_profile_id,
                payment_profile_id=profile.payment_profile_id,
            )
        )
        assert by_profile.approved and by_profile.card_last_four == "0017"
        assert int(by_profile.transaction_id) > int(sale.transaction_id)


def test_a_stopped_server_is_really_gone(anet_sandbox):
    server = SandboxServer(api_login_id="gone", transaction_key="gone-key").start()
    gateway = AuthorizeNetGateway(
        AuthorizeNetConfig(api_login_id="gone", transaction_key="gone-key", endpoint=server.url)
    )
    assert charge(gateway=gateway).approved  # leaves a kept-alive connection behind

    server.stop()

    assert charge(gateway=gateway).outcome in (Outcome.ERROR, Outcome.UNKNOWN)


def test_declined_and_voided_transactions_join_the_next_batch(anet_sandbox):
    anet_sandbox.configure(settle_delay_seconds=3600)
    declined = charge("tok_declined")
    auth = charge(capture=False)
    get_gateway().void(transaction_id=auth.transaction_id)
    assert len(anet_sandbox.state.unsettled()) == 2

    anet_sandbox.state.settle()

    batch_ids = {anet_sandbox.state.transaction(t).batch_id for t in (declined.transaction_id, auth.transaction_id)}
    assert len(batch_ids) == 1 and batch_ids != {""}
    assert anet_sandbox.state.unsettled() == []


# --- HTTP requests ---------------------------------------------------------------------------------

_CLIENT_HEADERS = (
    b"Host: 127.0.0.1:8999\r\nUser-Agent: python-requests/2.32.3\r\nAccept-Encoding: gzip, deflate\r\n"
    b"Accept: */*\r\nConnection: keep-alive\r\nContent-Type: application/xml\r\nversion: 1.0\r\n"
    b"Content-Length: 12\r\n\r\n"
)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /xml/v1/request.api HTTP/1.1\r\n" + _CLIENT_HEADERS,
        b"POST /xml/v1/request.api HTTP/1.1\r\nConnection: close\r\nContent-Length: 3\r\n\r\n",
        b"GET //_emulator//health HTTP/1.1\n" + _CLIENT_HEADERS.replace(b"\r\n", b"\n"),
        b"GET /_emulator/health HTTP/1.0\r\nHost: x\r\n\r\n",
        b"GET /_emulator/health\r\n",
        b"post /x HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /x HTTP/1.1\r\nX-Folded: one\r\n  two\r\nContent-Type: text/xml\r\n\r\n",
        b"POST /x HTTP/1.1\r\nContent-Type: text/xml\r\ncontent-type: application/xml\r\n\r\n",
        b"POST /x HTTP/1.1\r\nContent-Length:5\r\nX-Trailing: v \t \r\nX-Empty:\r\n\r\n",
        b"POST /x HTTP/1.1\r\nBad Header: x\r\nContent-Length: 1\r\n\r\n",
        b"POST /x HTTP/1.1\r\n: no name\r\nX-Latin: caf\xe9\r\nX-Cr: a\rb\r\n\r\n",
        b"POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
        b"POST /x HTTP/1.1\r\nConnection: Keep-Alive\r\nX: " + b"y" * 70_000 + b"\r\n\r\n",
        b"POST /x HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % n for n in range(101)) + b"\r\n",
        b"POST /x HTTP/1.1\r\nHost: x",  # the connection ended in the headers
    ],
)
def test_requests_are_parsed_as_the_standard_library_parses_them(request_bytes):
    from http.server import BaseHTTPRequestHandler
    from io import BytesIO

    from payments.gateways.sandbox.server import _Handler

    def parsed(parse):
        handler = _Handler.__new__(_Handler)
        handler.client_address = ("127.0.0.1", 1)
        line, _, rest = request_bytes.partition(b"\n")
        handler.raw_requestline = line + b"\n" if _ else line
        handler.rfile, handler.wfile = BytesIO(rest), BytesIO()
        ok = parse(handler)
        sent = b"".join(line for line in handler.wfile.getvalue().splitlines(True) if not line.startswith(b"Date:"))
        view = (ok, sent, handler.command, handler.request_version, handler.close_connection, handler.rfile.tell())
        if ok:
            view += (handler.path, handler.requestline, handler.headers.items())
        return view

    assert parsed(_Handler.parse_request) == parsed(BaseHTTPRequestHandler.parse_request)
