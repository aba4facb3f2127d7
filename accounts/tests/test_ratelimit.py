"""Per-credential limits: exact counts, headers, Retry-After, concurrency, Redis and fail-open."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import override_settings
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from accounts import ratelimit

ME = "/api/v1/auth/me"
HOUR = {"rate_limit_per_minute": 1000, "rate_limit_per_hour": 3, "rate_limit_per_day": 1000}


def _wait_for_minute_room(seconds_needed: float = 5, period: int = 60) -> None:
    """Fixed windows: keep a test that counts in a window from straddling its boundary (a request in
    the next window starts a fresh count, and an exact Remaining would be off by the ones before)."""
    left = period - time.time() % period
    if left < seconds_needed:
        time.sleep(left + 0.05)


def _wait_for_window_room(seconds_needed: float = 5) -> None:
    """Room in the current minute and in the current hour (the hour's boundary is a minute's too)."""
    _wait_for_minute_room(seconds_needed, period=3600)
    _wait_for_minute_room(seconds_needed)


@pytest.mark.django_db
def test_limit_hits_at_exactly_the_configured_count(make_api_key, merchant, client_for):
    _wait_for_window_room()  # counts in the hour window, and the minute's Remaining below
    client = client_for(make_api_key(merchant=merchant, **HOUR))
    for n in range(1, 4):
        response = client.get(ME)
        assert response.status_code == 200
        assert response["X-RateLimit-Limit"] == "3"
        assert response["X-RateLimit-Remaining"] == str(3 - n)
        assert 0 < int(response["X-RateLimit-Reset"]) <= 3600
        assert "Retry-After" not in response
    blocked = client.get(ME)
    assert blocked.status_code == 429
    body = blocked.json()
    assert body["error"]["code"] == "rate_limited"
    assert body["error"]["details"]["window"] == "hour"
    assert blocked["X-RateLimit-Remaining"] == "0"
    assert blocked["Retry-After"] == blocked["X-RateLimit-Reset"]
    assert 0 < int(blocked["Retry-After"]) <= 3600
    # Rejected requests do not eat the other windows.
    assert blocked["X-RateLimit-Remaining-Minute"] == str(1000 - 3)


@pytest.mark.django_db
def test_minute_window_and_tightest_header(make_api_key, merchant, client_for):
    _wait_for_minute_room()
    client = client_for(
        make_api_key(merchant=merchant, rate_limit_per_minute=2, rate_limit_per_hour=50, rate_limit_per_day=60)
    )
    first = client.get(ME)
    assert (first["X-RateLimit-Limit"], first["X-RateLimit-Remaining"]) == ("2", "1")
    assert int(first["X-RateLimit-Reset"]) <= 60
    assert first["X-RateLimit-Remaining-Hour"] == "49" and first["X-RateLimit-Remaining-Day"] == "59"
    assert client.get(ME).status_code == 200
    blocked = client.get(ME)
    assert blocked.status_code == 429 and int(blocked["Retry-After"]) <= 60


@pytest.mark.django_db
def test_headers_on_every_authenticated_response_errors_included(make_api_key, merchant, client_for):
    _wait_for_minute_room()  # exact Remaining counts of the (tightest) minute window
    client = client_for(make_api_key(merchant=merchant, permissions=["payments:read"]))
    denied = client.get("/api/v1/auth/api-keys")
    assert denied.status_code == 403
    assert (denied["X-RateLimit-Limit"], denied["X-RateLimit-Remaining"]) == ("100", "99")
    bad_body = client.post("/api/v1/auth/permissions/check", {"permissions": ["nope"]}, format="json")
    assert bad_body.status_code == 400
    assert bad_body["X-RateLimit-Remaining"] == "98"
    assert "X-RateLimit-Limit" not in APIClient().get(ME)  # unauthenticated: nothing to count


@pytest.mark.django_db
def test_limits_are_per_credential(make_api_key, merchant, client_for):
    first = client_for(make_api_key(merchant=merchant, **HOUR))
    second = client_for(make_api_key(merchant=merchant, **HOUR))
    for _ in range(3):
        first.get(ME)
    assert first.get(ME).status_code == 429
    assert second.get(ME).status_code == 200


@pytest.mark.django_db
def test_jwt_shares_its_keys_limits(make_api_key, merchant, client_for, obtain):
    created = make_api_key(merchant=merchant, **HOUR)
    bearer = client_for(bearer=obtain(created)["access_token"])
    key = client_for(created)
    assert bearer.get(ME).status_code == 200
    assert key.get(ME).status_code == 200
    assert bearer.get(ME)["X-RateLimit-Remaining"] == "0"
    assert key.get(ME).status_code == 429
    assert bearer.get(ME).status_code == 429


@pytest.mark.django_db
def test_user_tokens_use_the_default_limits(merchant_user, obtain, client_for):
    from .factories import PASSWORD

    with override_settings(ACCOUNTS_USER_RATE_LIMITS={"hour": 2}):
        client = client_for(bearer=obtain(username="alice", password=PASSWORD)["access_token"])
        assert client.get(ME).status_code == 200
        assert client.get(ME)["X-RateLimit-Limit"] == "2"
        assert client.get(ME).status_code == 429


@pytest.mark.django_db
def test_ip_denied_requests_do_not_spend_the_quota(make_api_key, merchant, client_for):
    created = make_api_key(merchant=merchant, ip_blacklist=["192.0.2.0/24"], **HOUR)
    denied = client_for(created, REMOTE_ADDR="192.0.2.1")
    for _ in range(5):
        assert denied.get(ME).status_code == 403
    assert client_for(created).get(ME)["X-RateLimit-Remaining"] == "2"


@pytest.mark.django_db
@override_settings(RATE_LIMIT_ENABLED=False)
def test_disabled(make_api_key, merchant, client_for):
    client = client_for(make_api_key(merchant=merchant, **HOUR))
    for _ in range(5):
        response = client.get(ME)
        assert response.status_code == 200
    assert "X-RateLimit-Limit" not in response


def _hammer(bucket: str, limit: int, calls: int = 120, workers: int = 12) -> int:
    barrier = threading.Barrier(workers)

    def worker(_):
        barrier.wait()
        return sum(
            1
            for _ in range(calls // workers)
            if (d := ratelimit.hit(bucket, {"hour": limit, "day": 10 * limit})) is not None and d.allowed
        )

    with ThreadPoolExecutor(workers) as pool:
        return sum(pool.map(worker, range(workers)))


@override_settings(RATE_LIMIT_REDIS_URL=None)
def test_concurrent_hits_never_exceed_the_limit_local_cache():
    assert _hammer("test:local", 37) == 37


@pytest.mark.redis
def test_concurrent_hits_never_exceed_the_limit_redis(settings):
    assert settings.RATE_LIMIT_REDIS_URL
    decision = ratelimit.hit("test:probe", {"hour": 5})
    assert decision is not None and decision.backend == "redis"
    assert _hammer("test:redis", 37) == 37


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_never_exceed_a_keys_limit(make_api_key, merchant):
    created = make_api_key(merchant=merchant, rate_limit_per_minute=1000, rate_limit_per_hour=10)
    barrier = threading.Barrier(8)

    def worker(_):
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=created.key)
        barrier.wait()
        try:
            return [client.get(ME).status_code for _ in range(3)]
        finally:
            connection.close()

    with ThreadPoolExecutor(8) as pool:
        codes = [code for batch in pool.map(worker, range(8)) for code in batch]
    assert codes.count(200) == 10
    assert codes.count(429) == 14


@pytest.mark.django_db
@override_settings(RATE_LIMIT_REDIS_URL="redis://127.0.0.1:1/0", RATE_LIMIT_REDIS_TIMEOUT=0.2)
def test_redis_outage_fails_open(make_api_key, merchant, client_for, caplog):
    caplog.set_level(logging.WARNING, logger="easypay.ratelimit")
    before = REGISTRY.get_sample_value("easypay_ratelimit_fail_open_total", {"limiter": "credential"}) or 0
    client = client_for(make_api_key(merchant=merchant, **HOUR))
    for _ in range(5):
        response = client.get(ME)
        assert response.status_code == 200
        assert "X-RateLimit-Limit" not in response
    after = REGISTRY.get_sample_value("easypay_ratelimit_fail_open_total", {"limiter": "credential"})
    assert after - before == 5
    assert "failing open" in caplog.text


def test_decision_headers_pick_the_tightest_window():
    windows = (
        ratelimit.WindowState(name="minute", seconds=60, limit=10, count=2, reset=30),
        ratelimit.WindowState(name="hour", seconds=3600, limit=100, count=99, reset=1800),
        ratelimit.WindowState(name="day", seconds=86400, limit=1000, count=99, reset=40000),
    )
    decision = ratelimit.Decision(allowed=True, windows=windows, keys=(), backend="cache")
    headers = decision.headers()
    assert (headers["X-RateLimit-Limit"], headers["X-RateLimit-Remaining"], headers["X-RateLimit-Reset"]) == (
        "100",
        "1",
        "1800",
    )
