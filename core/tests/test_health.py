"""Health endpoints, including the 503 paths with a dead cache and a dead database."""

import pytest
from django.db import OperationalError

from core import health

pytestmark = pytest.mark.django_db

DEAD_REDIS = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2, "IGNORE_EXCEPTIONS": True},
    }
}


def test_health_and_liveness(anon_client):
    assert anon_client.get("/health").json()["data"]["status"] == "ok"
    assert anon_client.get("/health/live").json()["data"] == {"status": "ok"}


def test_ready_ok(anon_client):
    response = anon_client.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["data"]["checks"] == {"database": "ok", "cache": "ok"}


def test_ready_503_names_the_dead_cache(anon_client, settings):
    settings.CACHES = DEAD_REDIS
    response = anon_client.get("/health/ready")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "service_unavailable"
    assert error["details"] == {"database": "ok", "cache": "unavailable"}
    assert "cache" in error["message"]


class _DeadConnection:
    def cursor(self):
        raise OperationalError("connection to server at 10.1.2.3 failed: secret-host")


def test_ready_503_names_the_dead_database(anon_client, monkeypatch):
    monkeypatch.setattr(health, "connection", _DeadConnection())
    response = anon_client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["error"]["details"]["database"] == "unavailable"


def test_detailed_reports_latency_without_secrets(anon_client, monkeypatch, settings):
    response = anon_client.get("/health/detailed")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["components"]["database"]["status"] == "ok"
    assert isinstance(data["components"]["database"]["latency_ms"], float)
    assert data["version"]

    monkeypatch.setattr(health, "connection", _DeadConnection())
    response = anon_client.get("/health/detailed")
    assert response.status_code == 503
    text = response.content.decode()
    assert "10.1.2.3" not in text and "secret-host" not in text
    assert response.json()["data"]["components"]["database"] == {
        "status": "unavailable",
        "latency_ms": response.json()["data"]["components"]["database"]["latency_ms"],
        "error": "OperationalError",
    }


def test_broker_checked_when_configured(settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"
    settings.CELERY_TASK_ALWAYS_EAGER = False
    assert "broker" in health.configured_checks()
    settings.CELERY_TASK_ALWAYS_EAGER = True
    assert "broker" not in health.configured_checks()


def _sample(client, name: str, **labels) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    response = client.get("/metrics")
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def test_metrics_count_easypay_payments_and_webhooks(
    anon_client, api_client, anet_sandbox, django_capture_on_commit_callbacks
):
    """/metrics exports EasyPay's own counters, and they move: a captured payment (counted once its
    transaction commits), a refused notification."""
    payments = _sample(anon_client, "easypay_payments_total", status="captured")
    inbound = _sample(anon_client, "easypay_webhook_inbound_total", result="invalid_signature")
    body = {"amount": "12.00", "currency": "USD", "card_token": "tok_visa"}
    with django_capture_on_commit_callbacks(execute=True):
        assert api_client.post("/api/v1/payments", body, format="json").status_code == 201
    refused = anon_client.post(
        "/api/v1/webhooks/authorize-net", {"notificationId": "n-1"}, content_type="application/json"
    )
    assert refused.status_code == 401
    assert _sample(anon_client, "easypay_payments_total", status="captured") == payments + 1
    assert _sample(anon_client, "easypay_webhook_inbound_total", result="invalid_signature") == inbound + 1


def test_metrics_and_schema_and_docs(anon_client):
    metrics = anon_client.get("/metrics")
    assert metrics.status_code == 200
    assert b"# TYPE easypay_payments_total counter" in metrics.content
    assert b"# TYPE easypay_webhook_deliveries_total counter" in metrics.content
    schema = anon_client.get("/api/schema/")
    assert schema.status_code == 200 and b"openapi: 3" in schema.content
    assert anon_client.get("/api/docs/").status_code == 200


# --- the scheduler's heartbeat -------------------------------------------------------------------


def _beat(seconds_ago: float) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from core.heartbeat import heartbeat_beat

    heartbeat_beat(now=timezone.now() - timedelta(seconds=seconds_ago))


def _metric(name: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name)


def test_detailed_reports_a_live_scheduler(anon_client, settings):
    settings.SCHEDULER_HEARTBEAT_STALE_SECONDS = 120
    _beat(3)
    response = anon_client.get("/health/detailed")
    assert response.status_code == 200
    data = response.json()["data"]
    scheduler = data["components"]["scheduler"]
    assert scheduler["status"] == "ok"
    assert 3 <= scheduler["last_beat_age_seconds"] < 60
    assert scheduler["stale_after_seconds"] == 120
    assert data["status"] == "ok"
    assert 3 <= _metric("easypay_scheduler_heartbeat_age_seconds") < 60
    assert _metric("easypay_scheduler_stale") == 0.0


def test_a_stopped_scheduler_is_stale_in_detailed_but_ready_stays_200(anon_client, settings):
    settings.SCHEDULER_HEARTBEAT_STALE_SECONDS = 120
    _beat(600)
    response = anon_client.get("/health/detailed")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["components"]["scheduler"]["status"] == "stale"
    assert data["components"]["scheduler"]["last_beat_age_seconds"] >= 600
    assert data["status"] == "degraded"
    assert _metric("easypay_scheduler_stale") == 1.0
    assert anon_client.get("/health/ready").status_code == 200  # web instances keep serving
    metrics = anon_client.get("/metrics").content.decode()
    assert "easypay_scheduler_stale 1.0" in metrics


def test_a_scheduler_never_seen_is_reported_as_such(anon_client):
    data = anon_client.get("/health/detailed").json()["data"]
    assert data["components"]["scheduler"] == {
        "status": "not_seen",
        "last_beat_at": None,
        "last_beat_age_seconds": None,
        "stale_after_seconds": 120,
    }
    assert _metric("easypay_scheduler_heartbeat_age_seconds") == -1.0
    assert _metric("easypay_scheduler_stale") == 1.0


def test_the_root_is_a_landing_page_linking_docs_swagger_admin_and_health(anon_client):
    response = anon_client.get("/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "make docs" in page and 'href="/docs/"' not in page  # no route serves /docs/
    for link in ('href="/api/docs/"', 'href="/admin/"', 'href="/health/ready"'):
        assert link in page
    assert anon_client.post("/").status_code == 405


# --- the registry the apps fill ------------------------------------------------------------------


@pytest.fixture
def registry(monkeypatch):
    monkeypatch.setattr(health, "_CHECKS", dict(health._CHECKS))
    monkeypatch.setattr(health, "_COMPONENTS", dict(health._COMPONENTS))
    return health


def test_payments_registers_the_processor_between_the_checks_and_the_scheduler(anon_client):
    assert list(health._CHECKS)[:3] == ["database", "cache", "broker"]
    components = anon_client.get("/health/detailed").json()["data"]["components"]
    assert list(components) == ["database", "cache", "processor", "scheduler"]
    assert components["processor"] == {"status": "ok", "circuit": "closed"}


def test_a_registered_check_joins_readiness_and_fails_it(anon_client, registry):
    def dead() -> None:
        raise ConnectionError("10.9.9.9 refused")

    registry.register_check("search", dead)
    response = anon_client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["error"]["details"] == {"database": "ok", "cache": "ok", "search": "unavailable"}
    detailed = anon_client.get("/health/detailed")
    assert detailed.status_code == 503
    assert detailed.json()["data"]["components"]["search"]["error"] == "ConnectionError"
    assert "10.9.9.9" not in detailed.content.decode()


def test_a_disabled_check_is_left_out_and_a_component_never_fails_detailed(anon_client, registry):
    registry.register_check("search", lambda: None, enabled=lambda: False)
    registry.register_component("search_index", lambda: {"status": "degraded"})
    assert "search" not in registry.configured_checks()
    assert anon_client.get("/health/ready").json()["data"]["checks"] == {"database": "ok", "cache": "ok"}
    response = anon_client.get("/health/detailed")
    assert response.status_code == 200
    assert response.json()["data"]["components"]["search_index"] == {"status": "degraded"}
