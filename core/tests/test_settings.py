"""Settings behaviour: defaults without env, backends with env, production refusals."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({
    "db": settings.DATABASES["default"]["ENGINE"],
    "cache": settings.CACHES["default"]["BACKEND"],
    "eager": settings.CELERY_TASK_ALWAYS_EAGER,
    "broker": settings.CELERY_BROKER_URL,
    "debug": settings.DEBUG,
    "anet": settings.AUTHORIZE_NET_ENDPOINT,
    "private": settings.WEBHOOK_ALLOW_PRIVATE_URLS,
}))
"""


def _run(module: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "CELERY_"))}
    for name in (
        "SECRET_KEY",
        "API_KEY_HASH_KEY",
        "JWT_SIGNING_KEY",
        "API_KEY_HASH_KEY_PREVIOUS",
        "JWT_SIGNING_KEY_PREVIOUS",
    ):
        clean.pop(name, None)
    if module.endswith("production") and "SECRET_KEY" in env:
        env = {"API_KEY_HASH_KEY": "h" * 50, "JWT_SIGNING_KEY": "j" * 50, **env}
    clean.pop("DEBUG", None)
    clean.update(env, DJANGO_SETTINGS_MODULE=module)
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-c", PROBE], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


def test_local_defaults_are_embedded():
    result = _run("config.settings.local")
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout)
    assert probe["db"].endswith("sqlite3")
    assert probe["cache"].endswith("LocMemCache")
    assert probe["eager"] is True and probe["broker"] == "memory://localhost/"  # in-process: no "No hostname" warnings
    assert probe["debug"] is True
    assert probe["anet"] == "http://127.0.0.1:8999/xml/v1/request.api"


def test_env_selects_postgres_redis_and_a_real_broker():
    result = _run(
        "config.settings.local",
        DATABASE_URL="postgres://u:p@db.example:5432/easypay",
        REDIS_URL="redis://cache.example:6379/0",
        DEBUG="false",
    )
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout)
    assert probe["db"].endswith("postgresql")
    assert probe["cache"].endswith("RedisCache")
    assert probe["eager"] is False and probe["broker"] == "redis://cache.example:6379/0"
    assert probe["debug"] is False


def test_production_refuses_dev_secret_key():
    result = _run("config.settings.production")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_refuses_debug():
    result = _run("config.settings.production", SECRET_KEY="x" * 50, DEBUG="true")
    assert result.returncode != 0
    assert "DEBUG" in result.stderr


def test_production_starts_with_real_secrets():
    result = _run("config.settings.production", SECRET_KEY="k" * 50)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["debug"] is False


def test_bad_boolean_env_is_a_clear_error():
    result = _run("config.settings.local", DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


def test_production_refuses_emulator_credentials_against_real_authorize_net():
    result = _run("config.settings.production", SECRET_KEY="k" * 50, AUTHORIZE_NET_ENDPOINT="production")
    assert result.returncode != 0
    assert "AUTHORIZE_NET_API_LOGIN_ID" in result.stderr
    ok = _run(
        "config.settings.production",
        SECRET_KEY="k" * 50,
        AUTHORIZE_NET_ENDPOINT="production",
        AUTHORIZE_NET_API_LOGIN_ID="real-login",
        AUTHORIZE_NET_TRANSACTION_KEY="realkey123456789",
        AUTHORIZE_NET_SIGNATURE_KEY="A" * 128,
    )
    assert ok.returncode == 0, ok.stderr


def _python(code: str, module: str = "config.settings.local", **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "CELERY_"))}
    for name in ("SECRET_KEY", "DEBUG", "EASYPAY_DEV_KEY_WARNED", "LOG_FORMAT", "SUBSCRIPTION_BILLING_EVERY_SECONDS"):
        clean.pop(name, None)
    if module.endswith("production"):  # production refuses to start without its own secrets
        clean.update(API_KEY_HASH_KEY="h" * 50, JWT_SIGNING_KEY="j" * 50)
    clean.update(env, DJANGO_SETTINGS_MODULE=module)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60)


SETUP = "import django; django.setup(); from django.conf import settings\n"


def test_the_development_secret_key_note_is_one_line_and_only_when_not_said_yet():
    said = _python(SETUP)
    assert said.returncode == 0, said.stderr
    assert said.stderr.count("development SECRET_KEY") == 1
    assert len([line for line in said.stderr.splitlines() if line.strip()]) == 1  # no file:line + source line
    quiet = _python(SETUP, EASYPAY_DEV_KEY_WARNED="1")
    assert "SECRET_KEY" not in quiet.stderr
    real = _python(SETUP, SECRET_KEY="s" * 50)
    assert "SECRET_KEY" not in real.stderr


def test_eager_tasks_without_a_broker_log_no_kombu_hostname_warning():
    code = SETUP + (
        "from config.celery import app; app.loader.import_default_modules()\n"
        "assert app.conf.task_always_eager\n"
        "app.tasks['payments.tasks.idempotency_purge'].delay()\n"
    )
    result = _python(code, DATABASE_URL="sqlite:///:memory:", EASYPAY_DEV_KEY_WARNED="1")
    # the in-memory database has no tables: the task fails, but the broker warning is what we look for
    assert "No hostname was supplied" not in result.stderr + result.stdout


def test_development_console_is_readable_and_production_is_json():
    code = SETUP + "import logging; logging.getLogger('easypay.test').warning('hello %s', 'there', extra={'k': 1})\n"
    text = _python(code, EASYPAY_DEV_KEY_WARNED="1")
    line = next(ln for ln in text.stderr.splitlines() if "hello" in ln)
    assert "WARNING" in line and "easypay.test: hello there" in line and "k=1" in line
    assert not line.startswith("{")
    as_json = _python(code, EASYPAY_DEV_KEY_WARNED="1", LOG_FORMAT="json")
    record = json.loads(next(ln for ln in as_json.stderr.splitlines() if "hello" in ln))
    assert record["message"] == "hello there" and record["k"] == 1
    prod = _python(code, "config.settings.production", SECRET_KEY="k" * 50)
    assert json.loads(next(ln for ln in prod.stderr.splitlines() if "hello" in ln))["level"] == "WARNING"


def test_development_bills_every_minute_and_production_daily():
    code = SETUP + "print(repr(settings.CELERY_BEAT_SCHEDULE['subscriptions.bill_due']['schedule']))\n"
    dev = _python(code, EASYPAY_DEV_KEY_WARNED="1")
    assert dev.stdout.strip() == "datetime.timedelta(seconds=60)", dev.stderr
    prod = _python(code, "config.settings.production", SECRET_KEY="k" * 50)
    assert "crontab" in prod.stdout and "6" in prod.stdout, prod.stderr


def test_every_create_api_key_option_has_help():
    from accounts.management.commands.create_api_key import Command

    parser = Command().create_parser("manage.py", "create_api_key")
    own = [
        a
        for a in parser._actions
        if a.dest
        not in {
            "help",
            "version",
            "verbosity",
            "settings",
            "pythonpath",
            "traceback",
            "no_color",
            "force_color",
            "skip_checks",
        }
    ]
    assert own and all(a.help for a in own), [a.dest for a in own if not a.help]


def test_make_help_lists_the_targets():
    result = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    for target in ("run", "test", "lint", "e2e", "PORT", "EMULATOR_PORT"):
        assert target in result.stdout


ROUTE_PROBE = SETUP + (
    "from config.celery import app; from webhooks.tasks import delivery_attempt\n"
    "from payments.inbound.tasks import inbound_event_process\n"
    "def route(task):\n"
    "    options = {'queue': getattr(task, 'queue', None)}\n"
    "    return app.amqp.router.route(options, task.name, (), {}, task_type=task)['queue'].name\n"
    "print(route(delivery_attempt), route(inbound_event_process), app.conf.task_default_queue)\n"
)


def test_webhook_deliveries_are_routed_to_their_queue_by_celery_task_routes():
    routed = _python(ROUTE_PROBE, WEBHOOKS_DELIVERY_QUEUE="webhooks", EASYPAY_DEV_KEY_WARNED="1")
    assert routed.returncode == 0, routed.stderr
    assert routed.stdout.split() == ["webhooks", "celery", "celery"]
    default = _python(ROUTE_PROBE, EASYPAY_DEV_KEY_WARNED="1")
    assert default.returncode == 0, default.stderr
    assert default.stdout.split() == ["celery", "celery", "celery"]


def test_environment_values_are_cast_strictly_and_name_the_variable(monkeypatch):
    from config.settings.components.env import env

    monkeypatch.setenv("EASYPAY_T_NUMBER", "5s")
    with pytest.raises(ValueError, match="EASYPAY_T_NUMBER must be a number"):
        env.float("EASYPAY_T_NUMBER", default=1.0)
    with pytest.raises(ValueError, match="EASYPAY_T_NUMBER must be an integer"):
        env.int("EASYPAY_T_NUMBER", default=1)
    monkeypatch.setenv("EASYPAY_T_NUMBER", " ")
    assert env.int("EASYPAY_T_NUMBER", default=7) == 7  # blank: the default
    monkeypatch.setenv("EASYPAY_T_LIST", " 30, ,60 ")
    assert env.list("EASYPAY_T_LIST", cast=int, default=[]) == [30, 60]
    assert env.list("EASYPAY_T_LIST", default=[]) == ["30", "60"]
    monkeypatch.setenv("EASYPAY_T_LIST", "30,x")
    with pytest.raises(ValueError, match="EASYPAY_T_LIST must be a list of integers"):
        env.list("EASYPAY_T_LIST", cast=int, default=[])
    monkeypatch.setenv("EASYPAY_T_BOOL", "Off")
    assert env.bool("EASYPAY_T_BOOL", default=True) is False
    monkeypatch.setenv("EASYPAY_T_MAP", "USD:100, JPY:5")
    assert env.int_map("EASYPAY_T_MAP", default={}) == {"USD": 100, "JPY": 5}
    monkeypatch.setenv("EASYPAY_T_MAP", "USD=100")
    with pytest.raises(ValueError, match="EASYPAY_T_MAP must be a list of NAME:integer"):
        env.int_map("EASYPAY_T_MAP", default={})
