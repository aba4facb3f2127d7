"""Schema bugs the fuzz found (tests/security/FINDINGS.md), each pinned by a test that failed before
its fix."""

from __future__ import annotations

import json

import pytest
import requests
from schemathesis.core.transport import Response

from tests.security.helpers import PAYMENT

from .checks import documented_success_status
from .test_schema_fuzz import SCHEMA

pytestmark = pytest.mark.django_db


def _resolve(ref: str) -> dict:
    node = SCHEMA.raw_schema
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return node


def _documented_200(path: str, method: str) -> dict:
    schema = SCHEMA.raw_schema["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
    return _resolve(schema["$ref"]) if "$ref" in schema else schema


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/v1/payments/{id}", "get"),
        ("/api/v1/subscriptions/{id}", "get"),
        ("/api/v1/webhooks/{id}", "get"),
        ("/api/v1/auth/me", "get"),
    ],
)
def test_single_object_responses_document_the_envelope(path, method):
    schema = _documented_200(path, method)
    assert {"data", "request_id", "timestamp"} <= set(schema.get("properties", {})), sorted(
        schema.get("properties", {})
    )


def test_list_responses_document_the_envelope():
    """The control: lists are documented with their envelope (so the check above can pass once fixed)."""
    schema = _documented_200("/api/v1/payments", "get")
    assert {"data", "pagination", "request_id", "timestamp"} <= set(schema["properties"])


def test_payment_without_customer_email_conforms_to_the_documented_schema(api_client, anet_sandbox):
    created = api_client.post("/api/v1/payments", {**PAYMENT, "customer_email": ""}, format="json")
    assert created.status_code == 201, created.content
    fetched = api_client.get(f"/api/v1/payments/{created.json()['data']['id']}")
    assert fetched.status_code == 200
    response = Response(
        status_code=200,
        headers={"content-type": ["application/json"]},
        content=json.dumps(fetched.json()).encode(),
        request=requests.Request("GET", "http://localhost/").prepare(),
        elapsed=0.0,
        verify=True,
    )
    SCHEMA["/api/v1/payments/{id}"]["GET"].validate_response(response)  # the whole enveloped body


def test_api_key_revocation_status_is_documented(fuzz_env, make_api_key, merchant):
    target = make_api_key(merchant=merchant, name="to revoke").api_key
    operation = SCHEMA["/api/v1/auth/api-keys/{id}"]["DELETE"]
    case = operation.Case(path_parameters={"id": str(target.pk)})
    response = case.call(headers={"X-API-Key": fuzz_env["key"]})
    assert response.status_code in (200, 204)
    documented_success_status(None, response, case)
