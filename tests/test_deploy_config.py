"""docker-compose.yml and Kong's declarative config: the stack they describe is the one the README
promises (no Docker engine runs here, so this is the syntax and wiring check)."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_compose_services_and_commands():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "beat", "emulator", "kong", "migrate"} <= set(services)
    assert services["web"]["command"][:2] == ["gunicorn", "config.wsgi:application"]
    assert services["worker"]["command"][:4] == ["celery", "-A", "config", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "config", "beat"]
    assert "anet_sandbox" in services["emulator"]["command"]
    for name in ("web", "worker", "beat"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://")
        assert env["REDIS_URL"].startswith("redis://")
        assert env["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
    # Kong is the only published port.
    published = [name for name, svc in services.items() if svc.get("ports")]
    assert published == ["kong"]


def test_kong_routes_keep_health_and_metrics_internal():
    kong = yaml.safe_load((ROOT / "deploy/kong/kong.yml").read_text())
    assert kong["_format_version"] == "3.0"
    (service,) = kong["services"]
    paths = [p for route in service["routes"] for p in route["paths"]]
    assert "/api" in paths
    assert not any(p.startswith(("/health", "/metrics")) for p in paths)
    plugins = {p["name"]: p["config"] for p in service["plugins"]}
    assert {"rate-limiting", "cors"} <= set(plugins)
    assert "Idempotency-Key" in plugins["cors"]["headers"]
    assert "X-API-Key" in plugins["cors"]["headers"]


def test_gunicorn_workers_freeze_their_start_up_objects_out_of_the_collector(monkeypatch):
    import gc
    import runpy

    from django.conf import settings

    for name in ("GUNICORN_WORKER_CLASS", "GUNICORN_WORKERS", "GUNICORN_DB_POOL_SIZE"):
        monkeypatch.delenv(name, raising=False)
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert conf["worker_class"] == "gevent"
    assert conf["workers"] * conf["worker_connections"] >= 45  # 150 payments/s against a 300 ms processor
    # The worker's pool settings go into a copy, not into this test session's databases.
    monkeypatch.setattr(settings, "DATABASES", {"default": {"ENGINE": "django.db.backends.sqlite3", "OPTIONS": {}}})
    before = gc.get_freeze_count()
    try:
        conf["post_worker_init"](worker=None)
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()


def test_compose_has_the_cluster_shape():
    """Three web replicas behind Kong's upstream with health checks, a streaming replica, Sentinel."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["web"]["deploy"]["replicas"] == 3
    replica = services["postgres-replica"]
    assert "pg_basebackup -h postgres" in " ".join(replica["command"])
    assert replica["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "wal_level=replica" in services["postgres"]["command"]
    assert "--replicaof" in services["redis-replica"]["command"]
    sentinels = [name for name in services if name.startswith("sentinel")]
    assert len(sentinels) == 3
    for name in sentinels:
        assert "sentinel monitor easypay redis 6379 2" in " ".join(services[name]["command"])
    env = services["web"]["environment"]
    assert env["REDIS_SENTINELS"] == ",".join(f"{name}:26379" for name in sentinels)
    assert env["DATABASE_REPLICA_URLS"].startswith("postgres://easypay:easypay@postgres-replica:5432/")
    assert "CELERY_BROKER_URL" not in env  # the broker goes through the Sentinels too
    for svc in services.values():  # every depends_on names a service of the file
        assert set(svc.get("depends_on", {})) <= set(services)

    kong = yaml.safe_load((ROOT / "deploy/kong/kong.yml").read_text())
    (upstream,) = kong["upstreams"]
    assert kong["services"][0]["host"] == upstream["name"]
    assert upstream["targets"] == [{"target": "web:8000"}]
    assert upstream["healthchecks"]["active"]["http_path"] == "/health/ready"
    assert upstream["healthchecks"]["active"]["unhealthy"]["http_failures"] >= 1


def _compose_spec_errors(document: dict) -> list[str]:
    import json

    import jsonschema

    schema = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())
    validator = jsonschema.Draft201909Validator(schema)
    return sorted(f"{'/'.join(map(str, error.path))}: {error.message}" for error in validator.iter_errors(document))


def test_compose_file_is_valid_against_the_compose_specification():
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert _compose_spec_errors(document) == []
    # The validator does catch a broken file (so an empty list above means something).
    broken = {**document, "services": {**document["services"], "web": {"image": 1, "ports": "8000"}}}
    assert len(_compose_spec_errors(broken)) >= 2
