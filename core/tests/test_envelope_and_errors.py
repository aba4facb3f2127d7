"""The contract's envelope and error shapes (CONTRACT section 2) across every failure class."""

import json
import re

import pytest

pytestmark = [pytest.mark.django_db, pytest.mark.urls("core.tests.urls_for_tests")]

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) >= {"error", "request_id", "timestamp"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    assert body["request_id"] == response["X-Request-ID"]
    assert TIMESTAMP.match(body["timestamp"])
    return body


def test_success_envelope(anon_client):
    response = anon_client.get("/api/v1/version")
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"version": "0.1.0", "api_version": "v1"}
    assert body["request_id"].startswith("req_")
    assert body["request_id"] == response["X-Request-ID"]
    assert TIMESTAMP.match(body["timestamp"])


def test_400_malformed_json(anon_client):
    response = anon_client.post("/api/v1/test/echo", data="{not json", content_type="application/json")
    body = assert_error(response, 400, "validation_error")
    assert "body" in body["error"]["details"]


def test_valid_json_is_parsed(anon_client):
    response = anon_client.post("/api/v1/test/echo", data=json.dumps({"a": [1, 2]}), content_type="application/json")
    assert response.status_code == 201
    assert response.json()["data"] == {"echo": {"a": [1, 2]}}


def test_wrong_content_type_is_json_error(anon_client):
    response = anon_client.post("/api/v1/test/echo", data="a=1", content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "unsupported_media_type")


def test_huge_body_is_refused_before_parsing(anon_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    payload = json.dumps({"blob": "x" * 5000})
    response = anon_client.post("/api/v1/test/echo", data=payload, content_type="application/json")
    assert_error(response, 413, "payload_too_large")


def test_401_without_credentials(anon_client):
    # The default permission refuses anonymous callers on every merchant endpoint.
    assert_error(anon_client.get("/api/v1/test/protected"), 401, "authentication_failed")


def test_401_with_garbage_api_key(anon_client):
    response = anon_client.get("/api/v1/test/protected", HTTP_X_API_KEY="not-a-key")
    assert_error(response, 401, "authentication_failed")


def test_403_shape_and_success_with_scope(make_api_key, anon_client):
    reader = make_api_key(permissions=["payments:read"])
    writer_only = make_api_key(permissions=["webhooks:write"])
    ok = anon_client.get("/api/v1/test/protected", HTTP_X_API_KEY=reader.key)
    assert ok.status_code == 200
    assert ok.json()["data"] == {"merchant_id": str(reader.api_key.merchant_id)}
    denied = anon_client.get("/api/v1/test/protected", HTTP_X_API_KEY=writer_only.key)
    assert_error(denied, 403, "permission_denied")


def test_404_unknown_api_path_is_json(anon_client):
    assert_error(anon_client.get("/api/v1/definitely/not/here"), 404, "not_found")
    assert_error(anon_client.get("/api/v2/anything"), 404, "not_found")


def test_405_shape(anon_client):
    assert_error(anon_client.delete("/api/v1/version"), 405, "method_not_allowed")


def test_500_is_json_without_traceback(anon_client, caplog):
    response = anon_client.get("/api/v1/test/boom")
    body = assert_error(response, 500, "internal_error")
    text = json.dumps(body)
    assert "Traceback" not in text and "secret detail" not in text and "4111" not in text


def test_unhandled_error_log_masks_card_numbers(anon_client):
    import logging

    from core.logging import JSONFormatter, RedactingFilter

    record = logging.makeLogRecord({"msg": "boom 4111111111111111 cvv <cardCode>123</cardCode>", "levelno": 40})
    RedactingFilter().filter(record)
    line = JSONFormatter().format(record)
    assert "4111111111111111" not in line and ">123<" not in line
    assert "[REDACTED_PAN]" in line


def test_redaction_leaves_durations_alone():
    from core.logging import redact_text

    assert redact_text("succeeded in 0.11384993199999371s") == "succeeded in 0.11384993199999371s"
    assert "4242" not in redact_text("card 4242 4242 4242 4242 declined").replace("[REDACTED_PAN]", "")
    uuid = "f4da6d36-7bf6-4337-9068-03159d360eed"
    assert redact_text(f"refund {uuid} for 4111111111111111") == f"refund {uuid} for [REDACTED_PAN]"
