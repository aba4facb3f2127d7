"""EasyPay's own checks of every fuzzed response (the contract's rules a schema cannot state), run beside
all of schemathesis' built-in checks (status code, content type, headers and body conformance,
negative data rejection ...) as schemathesis check functions.

- ``no_server_error``: never a 500, never a 5xx the operation does not document; a documented 502/503
  carries its contract code (``processor_error`` / ``service_unavailable``).
- ``contract_envelope``: JSON always; errors are ``{"error": {"code", "message", "details"},
  "request_id", "timestamp"}``, successes ``{"data", "request_id", "timestamp"}``, and the
  ``X-Request-ID`` header equals ``request_id``.
- ``documented_success_status``: a 2xx the schema does not list is a schema bug (clients generated
  from the schema would not expect it).
- ``payment_money_invariants``: any payment in a response keeps refunded <= captured <= authorized.
"""

from __future__ import annotations

import json
from decimal import Decimal

ERROR_CODES_5XX = {502: "processor_error", 503: "service_unavailable"}


def _documented(case) -> set[str]:
    return set(case.operation.definition.raw.get("responses", {}).keys())


def _json(response):
    try:
        return json.loads(response.content or b"null")
    except ValueError:
        raise AssertionError(f"{response.status_code} body is not JSON: {response.content[:200]!r}") from None


def no_server_error(ctx, response, case):
    status = response.status_code
    if status < 500:
        return None
    assert status != 500, f"500 Internal Server Error: {response.content[:500]!r}"
    assert str(status) in _documented(case), f"undocumented {status}: {response.content[:500]!r}"
    code = (_json(response) or {}).get("error", {}).get("code")
    expected = ERROR_CODES_5XX.get(status)
    assert expected is None or code == expected, f"{status} with error code {code!r}, expected {expected!r}"
    return None


def contract_envelope(ctx, response, case):
    status = response.status_code
    header_ids = response.headers.get("x-request-id") or []
    assert header_ids, "no X-Request-ID header"
    if status == 204:
        assert not response.content, f"204 with a body: {response.content[:200]!r}"
        return None
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.startswith("application/json"), f"{status} answered with Content-Type {content_type!r}"
    body = _json(response)
    assert isinstance(body, dict), f"{status} body is not a JSON object"
    assert body.get("request_id") == header_ids[0], "request_id differs from the X-Request-ID header"
    assert isinstance(body.get("timestamp"), str) and body["timestamp"], "no timestamp"
    if status >= 400:
        error = body.get("error")
        assert isinstance(error, dict), f"{status} without an error object: {body}"
        assert isinstance(error.get("code"), str) and error["code"], f"error.code missing: {body}"
        assert isinstance(error.get("message"), str) and error["message"], f"error.message missing: {body}"
        assert isinstance(error.get("details"), dict), f"error.details is not an object: {body}"
        assert "Traceback" not in response.content.decode("utf-8", "replace"), "a stack trace in an error body"
    else:
        assert "data" in body, f"{status} success without data: {body}"
        assert "error" not in body, f"{status} success with an error: {body}"
    return None


def documented_success_status(ctx, response, case):
    status = response.status_code
    if 200 <= status < 300 and not _probes_another_method(case):
        documented = _documented(case)
        assert str(status) in documented or "2XX" in documented or "default" in documented, (
            f"{status} is not documented for {case.operation.label} (documented: {sorted(documented)})"
        )
    return None


def _probes_another_method(case) -> bool:
    """Schemathesis' coverage phase also sends methods the operation does not define (OPTIONS, TRACE,
    PUT on a POST-only path ...): those answers are not the operation's, so only the envelope and
    no-5xx checks apply to them."""
    return case.method.upper() != case.operation.method.upper()


def _payments_in(body) -> list[dict]:
    data = body.get("data") if isinstance(body, dict) else None
    items = data if isinstance(data, list) else [data]
    return [p for p in items if isinstance(p, dict) and "captured_amount" in p and "refunded_amount" in p]


def payment_money_invariants(ctx, response, case):
    if response.status_code == 204 or not response.content or response.status_code >= 400:
        return None
    for payment in _payments_in(_json(response)):
        captured = Decimal(payment["captured_amount"])
        refunded = Decimal(payment["refunded_amount"])
        authorized = Decimal(payment["authorized_amount"] or "0")
        amount = Decimal(payment["amount"])
        assert Decimal(0) <= refunded <= captured, f"refunded {refunded} > captured {captured}: {payment['id']}"
        assert captured <= max(authorized, amount), f"captured {captured} > authorized {authorized}: {payment['id']}"
    return None


ALL_CHECKS = [
    no_server_error,
    contract_envelope,
    documented_success_status,
    payment_money_invariants,
]
