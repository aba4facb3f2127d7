"""Request ids and security headers."""

import pytest

pytestmark = pytest.mark.django_db


def test_client_request_id_is_echoed(anon_client):
    response = anon_client.get("/health", HTTP_X_REQUEST_ID="order-42.retry:1")
    assert response["X-Request-ID"] == "order-42.retry:1"
    assert response.json()["request_id"] == "order-42.retry:1"


@pytest.mark.parametrize(
    "bad",
    ["", "has space", "x" * 200, "evil\r\nSet-Cookie: a=b", "<script>", "../../etc/passwd"],
)
def test_insane_request_id_is_replaced(anon_client, bad):
    response = anon_client.get("/health", HTTP_X_REQUEST_ID=bad)
    rid = response["X-Request-ID"]
    assert rid.startswith("req_") and rid != bad
    assert response.json()["request_id"] == rid


def test_generated_request_ids_are_unique(anon_client):
    ids = {anon_client.get("/health")["X-Request-ID"] for _ in range(20)}
    assert len(ids) == 20


def test_security_headers_on_api(anon_client):
    response = anon_client.get("/api/v1/version")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "geolocation=()" in response["Permissions-Policy"]
    assert response["Content-Security-Policy"].startswith("default-src 'none'")
    assert response["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in response  # plain HTTP


def test_hsts_only_over_tls(anon_client):
    response = anon_client.get("/api/v1/version", secure=True)
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")


def test_admin_and_docs_csp_allow_their_own_assets(anon_client):
    for path in ("/admin/login/", "/api/docs/"):
        response = anon_client.get(path)
        assert response.status_code == 200, path
        csp = response["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert response["X-Frame-Options"] == "DENY"


def test_cors_preflight_for_allowed_origin(anon_client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://shop.example"]
    response = anon_client.options(
        "/api/v1/version",
        HTTP_ORIGIN="https://shop.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
    )
    assert response["Access-Control-Allow-Origin"] == "https://shop.example"
    other = anon_client.get("/api/v1/version", HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in other


API_CSP = "default-src 'none'; frame-ancestors 'none'"
PAGES_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'"
)
COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Permissions-Policy": "geolocation=(), microphone=(), camera=(), payment=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
}


def test_exact_security_headers_on_an_api_answer_and_an_admin_page():
    from django.test import Client

    api = Client().get("/api/v1/version", secure=True)
    page = Client().get("/admin/login/", secure=True)
    assert api.status_code == 200 and page.status_code == 200
    for response in (api, page):
        assert {name: response.get(name) for name in COMMON_HEADERS} == COMMON_HEADERS
    assert api["Content-Security-Policy"] == API_CSP
    assert api["Cache-Control"] == "no-store"
    assert page["Content-Security-Policy"] == PAGES_CSP


def test_security_headers_also_on_answers_given_before_the_view():
    from django.test import Client

    refused = Client().post("/api/v1/payments", data="x" * 10, content_type="application/json", CONTENT_LENGTH="abc")
    assert refused.status_code == 400
    assert refused["X-Content-Type-Options"] == "nosniff" and refused["X-Frame-Options"] == "DENY"
    assert refused["Content-Security-Policy"] == API_CSP


def test_hsts_can_be_turned_off(settings):
    from django.test import Client

    settings.SECURE_HSTS_SECONDS = 0
    response = Client().get("/api/v1/version", secure=True)
    assert response.status_code == 200
    assert "Strict-Transport-Security" not in response
    assert response["X-Content-Type-Options"] == "nosniff"
