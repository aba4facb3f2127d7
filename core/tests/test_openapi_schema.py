"""The served OpenAPI schema: valid OpenAPI 3, and every operation documents every status it can answer
(with the error envelope) and the headers its responses carry."""

from __future__ import annotations

import json
import time

import pytest
import requests
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from openapi_spec_validator import validate
from schemathesis.core.transport import Response

from config.wsgi import application


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if isinstance(operation, dict) and "responses" in operation:
                yield path, method, operation


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        kind, name = node["$ref"].split("/")[-2:]
        node = schema["components"][kind][name]
    return node


def test_the_schema_is_valid_openapi(schema):
    validate(json.loads(json.dumps(schema)))  # raises on the first error ('' is not a 'email', ...)


def test_a_blank_email_is_documented_as_allowed(schema):
    email = schema["components"]["schemas"]["PaymentCreateRequest"]["properties"]["customer_email"]
    assert email["default"] == ""
    assert {"type": "string", "maxLength": 0} in email["anyOf"]
    assert {"type": "string", "format": "email", "maxLength": 255} in email["anyOf"]


def test_every_api_operation_documents_the_errors_of_its_kind(schema):
    missing = []
    for path, method, operation in _operations(schema):
        if not path.startswith("/api/v1/"):
            continue
        documented = set(operation["responses"])
        expected = {"503"}
        if any(operation.get("security", [])):
            expected |= {"401", "403", "429"}
        if any(p["in"] == "path" for p in operation.get("parameters", [])):
            expected |= {"400", "404"}
        if any(p["in"] == "query" for p in operation.get("parameters", [])):
            expected.add("400")
        if method in ("post", "put", "patch"):
            expected |= {"400", "413", "415"}
        if method != "get" and any(p["in"] == "path" for p in operation.get("parameters", [])):
            expected.add("409")
        if not expected <= documented:
            missing.append(f"{method.upper()} {path}: {sorted(expected - documented)}")
    assert not missing, "\n".join(missing)


def test_every_error_response_is_the_error_envelope(schema):
    for path, method, operation in _operations(schema):
        if not path.startswith("/api/v1/"):
            continue
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            body = _resolve(schema, response["content"]["application/json"]["schema"])
            assert {"error", "request_id", "timestamp"} <= set(body["required"]), (method, path, status)
            error = _resolve(schema, body["properties"]["error"])
            assert {"code", "message", "details"} <= set(error["required"]), (method, path, status)


def test_every_response_documents_its_headers(schema):
    for path, method, operation in _operations(schema):
        secured = any(operation.get("security", []))
        idempotent = any(p.get("name") == "Idempotency-Key" for p in operation.get("parameters", []))
        for status, response in operation["responses"].items():
            headers = {name: _resolve(schema, h) for name, h in response.get("headers", {}).items()}
            where = (method, path, status)
            assert headers["X-Request-ID"]["required"] is True, where
            if secured and status != "401":
                assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(headers), where
                assert headers["X-RateLimit-Remaining"]["schema"]["type"] == "integer", where
            if status == "429":
                assert headers["Retry-After"]["required"] is True, where
            if idempotent:
                assert "Idempotent-Replayed" in headers, where


# --- real answers against the documented ones ----------------------------------------------------------

SERVED = schemathesis.openapi.from_wsgi("/api/schema/", application)


def _conforms(path: str, method: str, answer) -> None:
    """Status code, content type, headers and body of a real answer, as schemathesis checks them."""
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    operation = SERVED[path][method.upper()]
    response = Response(
        status_code=answer.status_code,
        headers={k.lower(): [v] for k, v in answer.headers.items()},
        content=answer.content,
        request=requests.Request(method.upper(), f"http://localhost{path}").prepare(),
        elapsed=0.0,
        verify=True,
    )
    case = operation.Case()
    case.validate_response(
        response,
        checks=[
            status_code_conformance,
            content_type_conformance,
            response_headers_conformance,
            response_schema_conformance,
        ],
    )


@pytest.mark.django_db
def test_real_error_answers_conform_to_the_schema(api_client, anon_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    unknown = "/api/v1/payments/00000000-0000-0000-0000-000000000000"
    answers = [
        ("/api/v1/payments/{id}", "get", api_client.get(unknown)),
        ("/api/v1/payments", "get", api_client.get("/api/v1/payments?limit=0")),
        ("/api/v1/payments", "get", anon_client.get("/api/v1/payments")),
        ("/api/v1/payments", "post", api_client.post("/api/v1/payments", "a=b", content_type="text/plain")),
        ("/api/v1/payments", "post", api_client.post("/api/v1/payments", {"x": "y" * 2000}, format="json")),
        ("/api/v1/payments/{id}/capture", "post", api_client.post(f"{unknown}/capture", {}, format="json")),
        ("/api/v1/webhooks/{id}", "delete", api_client.delete("/api/v1/webhooks/not-a-uuid")),
    ]
    assert [a.status_code for *_, a in answers] == [404, 400, 401, 415, 413, 404, 404]
    for path, method, answer in answers:
        _conforms(path, method, answer)


@pytest.mark.django_db
def test_rate_limited_answer_conforms_with_retry_after(make_api_key, merchant, settings):
    from rest_framework.test import APIClient

    settings.RATE_LIMIT_ENABLED = True
    left = 60 - time.time() % 60
    if left < 5:  # both requests in one fixed minute window
        time.sleep(left + 0.05)
    key = make_api_key(merchant=merchant, permissions=["*"], rate_limit_per_minute=1)
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key.key)
    first, second = client.get("/api/v1/payments"), client.get("/api/v1/payments")
    assert (first.status_code, second.status_code) == (200, 429)
    assert int(second["Retry-After"]) >= 1
    _conforms("/api/v1/payments", "get", first)
    _conforms("/api/v1/payments", "get", second)
