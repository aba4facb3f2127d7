"""Each process keeps its own copy of an API key and trusts it only while the key's version (answered
by the rate-limit script every request runs) is the one the copy was read at. A change made through
another process must take effect at once here too: these tests put the old copy back, as a process
that never saw the change would still hold it."""

from __future__ import annotations

import time

import pytest

from accounts import ratelimit, selectors
from accounts.services import api_key_revoke, api_key_update

pytestmark = [pytest.mark.django_db, pytest.mark.redis]


def _copy(key_id):
    return selectors._local_snapshots.get(key_id)


def _as_another_process(key_id, old_copy):
    """This process forgot its copy when it made the change; another one would still have it."""
    selectors._local_snapshots[key_id] = old_copy


def test_a_known_key_costs_one_redis_round_trip_for_auth_limits_and_usage(api_client, request):
    assert api_client.get("/api/v1/auth/me").status_code == 200  # reads the version, then the row
    key_id = api_client.api_key.api_key.key_id
    assert _copy(key_id) is not None

    sent = request.getfixturevalue("redis_commands")
    response = api_client.get("/api/v1/auth/me")
    assert response.status_code == 200
    assert response["X-RateLimit-Remaining"]
    assert len(sent) == 1, sent


def test_a_key_revoked_elsewhere_is_refused_at_once(api_client):
    assert api_client.get("/api/v1/auth/me").status_code == 200
    created = api_client.api_key
    old_copy = _copy(created.api_key.key_id)

    api_key_revoke(api_key=created.api_key)
    _as_another_process(created.api_key.key_id, old_copy)

    response = api_client.get("/api/v1/auth/me")
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


def test_permissions_and_ip_rules_changed_elsewhere_apply_at_once(api_client):
    assert api_client.get("/api/v1/payments").status_code == 200
    created = api_client.api_key
    old_copy = _copy(created.api_key.key_id)

    api_key_update(api_key=created.api_key, permissions=["webhooks:read"])
    _as_another_process(created.api_key.key_id, old_copy)
    assert api_client.get("/api/v1/payments").status_code == 403

    old_copy = _copy(created.api_key.key_id)
    api_key_update(api_key=created.api_key, ip_whitelist=["203.0.113.0/24"])
    _as_another_process(created.api_key.key_id, old_copy)
    response = api_client.get("/api/v1/webhooks")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "ip_not_allowed"


def test_a_stale_copy_costs_the_limit_one_request_not_two(api_client):
    assert api_client.get("/api/v1/auth/me").status_code == 200
    created = api_client.api_key
    old_copy = _copy(created.api_key.key_id)
    api_key_update(api_key=created.api_key, name="renamed")
    _as_another_process(created.api_key.key_id, old_copy)

    response = api_client.get("/api/v1/auth/me")
    assert response.status_code == 200
    used = [
        int(response[f"X-RateLimit-Limit-{window}"]) - int(response[f"X-RateLimit-Remaining-{window}"])
        for window in ("Minute", "Hour", "Day")
    ]
    # Two requests, counted once each (a window that started between them shows 1; none shows 3).
    assert max(used) == 2, used


def test_a_wrong_secret_is_refused_from_the_copy_without_redis(api_client, anon_client, request):
    assert api_client.get("/api/v1/auth/me").status_code == 200
    key_id = api_client.api_key.api_key.key_id
    sent = request.getfixturevalue("redis_commands")
    anon_client.credentials(HTTP_X_API_KEY=f"{key_id}.{'x' * 43}")
    assert anon_client.get("/api/v1/auth/me").status_code == 401
    assert sent == []


def test_a_copy_read_around_a_concurrent_change_is_never_trusted(api_client, monkeypatch):
    """The version is read before the row: a change committed in between leaves the copy with the old
    version, so the next request re-reads the key."""
    created = api_client.api_key
    key_id = created.api_key.key_id
    real_version = ratelimit.credential_version

    def version_then_change(bucket):
        version = real_version(bucket)
        api_key_update(api_key=created.api_key, permissions=["webhooks:read"])  # commits meanwhile
        return version

    monkeypatch.setattr(ratelimit, "credential_version", version_then_change)
    _snapshot, version = selectors.load_local_key_snapshot(key_id)
    monkeypatch.setattr(ratelimit, "credential_version", real_version)
    assert real_version(selectors.key_bucket(key_id)) != version
    assert api_client.get("/api/v1/payments").status_code == 403  # the current permissions


def test_copies_expire(api_client, monkeypatch):
    assert api_client.get("/api/v1/auth/me").status_code == 200
    key_id = api_client.api_key.api_key.key_id
    snapshot, version, loaded = _copy(key_id)
    selectors._local_snapshots[key_id] = (snapshot, version, loaded - selectors.LOCAL_SNAPSHOT_SECONDS - 1)
    assert selectors.local_key_snapshot(key_id) is None
    assert _copy(key_id) is None


def test_the_shared_snapshot_cache_never_keeps_a_key_read_before_its_revocation(api_key, monkeypatch):
    """The path JWTs minted from a key take: a read that loaded the row just before a revocation
    committed cannot cache the key as active (its fill is refused)."""
    key_id = api_key.api_key.key_id
    real_snapshot = selectors._key_snapshot

    def read_then_revoke(row):
        snapshot = real_snapshot(row)  # the row as this read loaded it
        api_key_revoke(api_key=api_key.api_key)  # commits and invalidates meanwhile
        return snapshot

    monkeypatch.setattr(selectors, "_key_snapshot", read_then_revoke)
    stale = selectors.load_key_snapshot(key_id)
    monkeypatch.setattr(selectors, "_key_snapshot", real_snapshot)
    assert stale["status"] == "active"  # what that one read saw
    assert selectors.load_key_snapshot(key_id)["status"] == "revoked"  # not what the cache kept


def test_a_merchant_suspended_in_the_admin_is_refused_even_by_a_copy_read_before_the_commit(
    api_client, django_capture_on_commit_callbacks, rf
):
    from django.contrib import admin

    from accounts.models import Merchant

    assert api_client.get("/api/v1/auth/me").status_code == 200
    key_id = api_client.api_key.api_key.key_id
    old_snapshot = _copy(key_id)[0]
    merchant = api_client.merchant
    merchant.status = "suspended"
    model_admin = admin.site._registry[Merchant]
    form = type("Form", (), {"changed_data": ["status"]})()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        model_admin.save_model(rf.post("/admin/"), merchant, form, change=True)
        # Another process reads the key after the first bump but before the commit: the row it sees is
        # still the active one, and it keeps it under the version as of now.
        version = ratelimit.credential_version(selectors.key_bucket(key_id))
        _as_another_process(key_id, (old_snapshot, version, time.monotonic()))
    for callback in callbacks:
        callback()  # the commit, and the bump after it

    assert api_client.get("/api/v1/auth/me").status_code == 401
