"""How the adapter classifies a processor that is slow, down, broken or misconfigured.

The rule under test: a request that provably never left is ERROR (nothing charged), one that may
have reached Authorize.Net is UNKNOWN (and the emulator shows the charge really happened), and the
circuit breaker fails fast once the processor keeps failing.
"""

from __future__ import annotations

import logging
import socket
import time
import uuid
from decimal import Decimal

import pytest
from authorizenet import apicontractsv1, apicontrollers

from payments.gateways import (
    ChargeRequest,
    GatewayCommunicationError,
    GatewayConfigurationError,
    GatewayUnavailable,
    Outcome,
    circuit_state,
    get_gateway,
    reset_gateway,
)
from payments.gateways.authorize_net import AuthorizeNetConfig, AuthorizeNetGateway
from payments.gateways.circuit import CircuitBreaker

PAN = "4111111111111111"


def ref() -> str:
    return "f_" + uuid.uuid4().hex[:16]


def charge(gateway=None, token="tok_visa", reference=None):
    request = ChargeRequest(
        amount=Decimal("10.00"), currency="USD", capture=True, reference=reference or ref(), card_token=token
    )
    return (gateway or get_gateway()).charge(request)


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/xml/v1/request.api"


def recorded(sandbox, reference):
    return [t for t in sandbox.state.snapshot() if t["invoice_number"] == reference]


# --- a reply that never comes back ---------------------------------------------------------------


def test_reply_slower_than_the_read_timeout_is_unknown_and_the_charge_exists(anet_sandbox, settings):
    settings.AUTHORIZE_NET_READ_TIMEOUT = 0.3
    anet_sandbox.configure(latency_ms=1500)
    reference = ref()

    started = time.monotonic()
    result = charge(reference=reference)

    assert time.monotonic() - started < 1.2
    assert result.outcome is Outcome.UNKNOWN
    assert result.error_code == "read_timeout"
    assert result.transaction_id is None
    [held] = recorded(anet_sandbox, reference)  # the processor did charge the card
    assert held["status"] == "settledSuccessfully"

    anet_sandbox.configure(latency_ms=0)
    [found] = get_gateway().find_transactions(reference=reference)  # reconciliation finds it
    assert found.transaction_id == held["trans_id"]
    assert found.response_code == "1"


@pytest.mark.parametrize(
    ("fail_mode", "error_code"),
    [("http500", "http_5xx"), ("malformed", "malformed_response"), ("drop", "connection_lost")],
)
def test_broken_replies_are_unknown_and_the_charge_exists(anet_sandbox, fail_mode, error_code):
    anet_sandbox.configure(fail_mode=fail_mode)
    reference = ref()

    result = charge(reference=reference)

    assert result.outcome is Outcome.UNKNOWN
    assert result.error_code == error_code
    assert len(recorded(anet_sandbox, reference)) == 1


def test_a_hung_connection_is_unknown(anet_sandbox, settings):
    settings.AUTHORIZE_NET_READ_TIMEOUT = 0.2
    anet_sandbox.configure(fail_mode="timeout", hang_seconds=1)

    assert charge().error_code == "read_timeout"


def test_read_operations_raise_when_the_reply_is_unusable(anet_sandbox):
    sale = charge()
    anet_sandbox.configure(fail_mode="http500")

    with pytest.raises(GatewayCommunicationError):
        get_gateway().transaction_details(transaction_id=sale.transaction_id)
    with pytest.raises(GatewayCommunicationError):
        get_gateway().find_transactions(reference="anything")


def test_capture_refund_and_void_report_unknown_too(anet_sandbox):
    auth = charge()
    anet_sandbox.configure(fail_mode="http500", fail_count=3)
    gateway = get_gateway()

    assert gateway.capture(transaction_id=auth.transaction_id, amount=Decimal("1.00")).outcome is Outcome.UNKNOWN
    assert (
        gateway.refund(transaction_id=auth.transaction_id, amount=Decimal("1.00"), card_last_four="1111").outcome
        is Outcome.UNKNOWN
    )
    assert gateway.void(transaction_id=auth.transaction_id).outcome is Outcome.UNKNOWN
    assert gateway.void(transaction_id=auth.transaction_id).outcome is Outcome.ERROR  # fail_count used up


# --- a request that never leaves -----------------------------------------------------------------


def test_unreachable_processor_is_a_fast_error(anet_sandbox, settings):
    settings.AUTHORIZE_NET_ENDPOINT = closed_port_url()

    started = time.monotonic()
    result = charge()

    assert time.monotonic() - started < 1
    assert result.outcome is Outcome.ERROR
    assert result.error_code == "connect_failed"
    with pytest.raises(GatewayUnavailable):
        get_gateway().transaction_details(transaction_id="1")


@pytest.fixture
def unanswered_port():
    """A listener whose accept queue is full: new connections are never established."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(listener.getsockname())
        fillers.append(filler)
    yield listener.getsockname()[1]
    for sock in [*fillers, listener]:
        sock.close()


def test_connect_timeout_is_an_error_not_unknown(anet_sandbox, settings, unanswered_port):
    settings.AUTHORIZE_NET_ENDPOINT = f"http://127.0.0.1:{unanswered_port}/xml/v1/request.api"
    settings.AUTHORIZE_NET_CONNECT_TIMEOUT = 0.2

    started = time.monotonic()
    result = charge()

    assert time.monotonic() - started < 1
    assert (result.outcome, result.error_code) == (Outcome.ERROR, "connect_failed")


def test_wrong_path_is_an_http_rejection(anet_sandbox, settings):
    settings.AUTHORIZE_NET_ENDPOINT = anet_sandbox.base_url + "/not/the/api"

    assert charge().error_code == "http_rejected"
    with pytest.raises(GatewayConfigurationError):
        get_gateway().transaction_details(transaction_id="1")
    assert get_gateway().circuit_state() == "closed"  # a reachable processor is not an outage


def test_no_proxy_is_honoured(anet_sandbox, monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "all_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # a dead proxy
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")

    assert charge().approved

    monkeypatch.delenv("no_proxy")
    assert charge().error_code == "connect_failed"  # the proxy is used when no_proxy does not exempt us


def test_ca_bundle_and_proxies_come_from_the_environment_of_each_call(monkeypatch):
    from payments.gateways.authorize_net.transport import transport_settings as _transport_settings

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "all_proxy", "http_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.setenv("https_proxy", "http://proxy.internal:3128")
    endpoint = "https://api.authorize.net/xml/v1/request.api"
    assert _transport_settings(endpoint) == ({"https": "http://proxy.internal:3128"}, True)

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/corp-ca.pem")
    monkeypatch.setenv("no_proxy", "authorize.net")
    assert _transport_settings(endpoint) == ({}, "/etc/ssl/corp-ca.pem")


# --- credentials -----------------------------------------------------------------------------------


def test_bad_credentials_are_a_configuration_error(anet_sandbox, settings, caplog):
    settings.AUTHORIZE_NET_TRANSACTION_KEY = "not-the-key"

    with caplog.at_level(logging.ERROR, logger="payments.gateways.authorize_net"):
        result = charge()

    assert result.outcome is Outcome.ERROR
    assert result.error_code == "E00007"
    assert result.message == "User authentication failed due to invalid authentication values."
    assert "E00007" in caplog.text
    assert anet_sandbox.state.snapshot() == []
    with pytest.raises(GatewayConfigurationError) as raised:
        get_gateway().transaction_details(transaction_id="1")
    assert raised.value.error_code == "E00007"
    with pytest.raises(GatewayConfigurationError):
        get_gateway().find_transactions(reference="x")
    assert get_gateway().circuit_state() == "closed"


# --- circuit breaker -------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_circuit_opens_fails_fast_and_recovers_through_half_open(anet_sandbox):
    clock = FakeClock()
    config = AuthorizeNetConfig(
        api_login_id=anet_sandbox.state.api_login_id,
        transaction_key=anet_sandbox.state.transaction_key,
        endpoint=anet_sandbox.url,
    )
    gateway = AuthorizeNetGateway(config, circuit=CircuitBreaker(failure_threshold=2, reset_timeout=30, clock=clock))
    anet_sandbox.configure(fail_mode="http500")

    assert charge(gateway).outcome is Outcome.UNKNOWN
    assert gateway.circuit_state() == "closed"
    assert charge(gateway).outcome is Outcome.UNKNOWN
    assert gateway.circuit_state() == "open"

    before = len(anet_sandbox.state.snapshot())
    with pytest.raises(GatewayUnavailable):
        charge(gateway)
    with pytest.raises(GatewayUnavailable):
        gateway.transaction_details(transaction_id="1")
    assert len(anet_sandbox.state.snapshot()) == before  # nothing reached the processor

    clock.now += 30
    assert gateway.circuit_state() == "half_open"
    anet_sandbox.configure(fail_mode=None)
    assert charge(gateway).approved  # the trial call
    assert gateway.circuit_state() == "closed"


def test_a_failed_trial_reopens_the_circuit(anet_sandbox):
    clock = FakeClock()
    gateway = AuthorizeNetGateway(
        AuthorizeNetConfig(api_login_id="x", transaction_key="y", endpoint=closed_port_url()),
        circuit=CircuitBreaker(failure_threshold=1, reset_timeout=10, clock=clock),
    )
    assert charge(gateway).outcome is Outcome.ERROR  # connection refused counts as a failure
    assert gateway.circuit_state() == "open"

    clock.now += 10
    assert charge(gateway).outcome is Outcome.ERROR  # the trial fails ...

    assert gateway.circuit_state() == "open"  # ... and the circuit opens again for 10 s
    with pytest.raises(GatewayUnavailable):
        charge(gateway)


def test_declines_do_not_trip_the_circuit(anet_sandbox, settings):
    settings.AUTHORIZE_NET_CIRCUIT_FAILURE_THRESHOLD = 2

    for _ in range(4):
        assert charge(token="tok_declined").outcome is Outcome.DECLINED

    assert circuit_state() == "closed"


def test_circuit_settings_come_from_django_settings(anet_sandbox, settings):
    settings.AUTHORIZE_NET_CIRCUIT_FAILURE_THRESHOLD = 2
    settings.AUTHORIZE_NET_CIRCUIT_RESET_SECONDS = 0.5
    anet_sandbox.configure(fail_mode="http500", fail_count=2)

    charge()
    charge()

    assert circuit_state() == "open"
    with pytest.raises(GatewayUnavailable):
        charge()
    time.sleep(0.55)
    assert circuit_state() == "half_open"
    assert charge().approved
    assert circuit_state() == "closed"


@pytest.mark.redis
def test_every_gateway_sharing_the_redis_sees_the_circuit_another_one_opened(anet_sandbox, settings):
    """Two gateways built from the same settings stand for two processes (web and worker, two instances)."""
    settings.AUTHORIZE_NET_CIRCUIT_REDIS_URL = settings.REDIS_URL
    settings.AUTHORIZE_NET_CIRCUIT_FAILURE_THRESHOLD = 2
    reset_gateway()
    web, worker = (AuthorizeNetGateway(AuthorizeNetConfig.from_settings()) for _ in range(2))
    anet_sandbox.configure(fail_mode="http500")

    assert charge(web).outcome is Outcome.UNKNOWN
    assert charge(worker).outcome is Outcome.UNKNOWN

    assert web.circuit_state() == worker.circuit_state() == circuit_state() == "open"
    before = len(anet_sandbox.state.snapshot())
    for gateway in (web, worker):
        with pytest.raises(GatewayUnavailable):
            charge(gateway)
    assert len(anet_sandbox.state.snapshot()) == before  # nothing reached the processor
    reset_gateway()
    assert worker.circuit_state() == "closed"  # the shared state is closed again for the next test


def test_a_redis_outage_under_the_shared_circuit_does_not_fail_payments(anet_sandbox, settings):
    settings.AUTHORIZE_NET_CIRCUIT_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    reset_gateway()
    from payments.gateways.circuit import STORAGE_ERRORS

    errors_before = STORAGE_ERRORS._value.get()
    reference = ref()

    result = charge(reference=reference)

    assert result.approved
    assert len(recorded(anet_sandbox, reference)) == 1  # charged once
    assert STORAGE_ERRORS._value.get() > errors_before  # the outage is counted
    assert get_gateway().circuit_state() == "closed"
    assert not get_gateway().circuit.shared  # carrying on in process memory


# --- card data never reaches the logs --------------------------------------------------------------


def test_no_card_number_or_cvv_in_logs_across_failing_and_succeeding_calls(anet_sandbox, settings, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="authorizenet.sdk")

    assert charge().approved
    settings.AUTHORIZE_NET_ENDPOINT = closed_port_url()
    assert charge().outcome is Outcome.ERROR

    assert "authorize.net charge" in caplog.text  # the adapter did log both calls
    assert PAN not in caplog.text
    assert "<cardCode>123<" not in caplog.text


def test_the_sdks_own_request_dump_is_redacted(anet_sandbox, caplog, monkeypatch):
    """APIOperationBase.execute() logs the whole request XML on an HTTP error; the filter masks it."""
    import payments.gateways.authorize_net  # noqa: F401 - installs the redaction filter

    sdk_logger = logging.getLogger("authorizenet.sdk")
    monkeypatch.setattr(sdk_logger, "propagate", True)  # test settings silence it entirely
    caplog.set_level(logging.DEBUG, logger="authorizenet.sdk")
    request = apicontractsv1.createTransactionRequest()
    request.merchantAuthentication = apicontractsv1.merchantAuthenticationType(name="login", transactionKey="key")
    request.transactionRequest = apicontractsv1.transactionRequestType(
        transactionType="authCaptureTransaction",
        amount=Decimal("5.00"),
        payment=apicontractsv1.paymentType(
            creditCard=apicontractsv1.creditCardType(cardNumber=PAN, expirationDate="2030-12", cardCode="987")
        ),
    )
    controller = apicontrollers.createTransactionController(request)
    controller.setenvironment(closed_port_url())

    controller.execute()

    assert "Error retrieving http response" in caplog.text  # the SDK did dump the request
    assert "cardNumber" in caplog.text
    assert PAN not in caplog.text
    assert "987</cardCode>" not in caplog.text
    assert "<cardCode>***</cardCode>" in caplog.text
