"""/api/v1/auth/api-keys: CRUD scoped to the merchant, secrets shown once, strict validation."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import APIKey
from accounts.services import api_key_usage_record

URL = "/api/v1/auth/api-keys"
pytestmark = pytest.mark.django_db


def _create(client, **body):
    body.setdefault("name", "server key")
    return client.post(URL, body, format="json")


def test_create_returns_the_secret_once(api_client, client_for):
    response = _create(
        api_client,
        name="checkout",
        description="web shop",
        permissions=["payments:read", "payments:write"],
        rate_limit_per_minute=10,
        ip_whitelist=["10.0.0.1/8", "2001:db8::/32"],
    )
    assert response.status_code == 201, response.json()
    data = response.json()["data"]
    assert data["key"] == f"{data['key_id']}.{data['key_secret']}"
    assert data["id"] and data["key_id"].startswith("ek_test_")
    assert data["permissions"] == ["payments:read", "payments:write"]
    assert data["mode"] == "test" and data["status"] == "active"
    assert data["rate_limit_per_minute"] == 10 and data["rate_limit_per_hour"] == 1000
    assert data["ip_whitelist"] == ["10.0.0.0/8", "2001:db8::/32"]
    stored = APIKey.objects.get(pk=data["id"])
    assert data["key_secret"] not in stored.key_secret_hash
    # The new key works (from an allowed address), and is a key of the same merchant.
    me = client_for(type("K", (), {"key": data["key"]})(), REMOTE_ADDR="10.9.9.9").get("/api/v1/auth/me")
    assert me.json()["data"]["merchant_id"] == str(api_client.merchant.pk)
    # Never again: get, list, update, delete.
    secret = data["key_secret"]
    for later in (
        api_client.get(f"{URL}/{data['id']}"),
        api_client.get(URL),
        api_client.patch(f"{URL}/{data['id']}", {"description": "x"}, format="json"),
        api_client.delete(f"{URL}/{data['id']}"),
    ):
        assert later.status_code == 200
        assert secret not in later.content.decode()
        assert b"key_secret" not in later.content and b'"key"' not in later.content


def test_defaults_follow_the_creator(make_api_key, merchant, client_for):
    creator = make_api_key(merchant=merchant, permissions=["api_keys:write", "payments:read"])
    response = _create(client_for(creator))
    assert response.status_code == 201
    assert response.json()["data"]["permissions"] == ["api_keys:write", "payments:read"]
    assert response.json()["data"]["mode"] == "test"


def test_live_creator_defaults_to_live(make_api_key, merchant, client_for):
    creator = make_api_key(merchant=merchant, mode="live")
    response = _create(client_for(creator))
    assert response.status_code == 201
    assert response.json()["data"]["mode"] == "live"
    assert response.json()["data"]["key_id"].startswith("ek_live_")


def test_test_key_cannot_create_live_key(api_client):
    before = APIKey.objects.count()
    response = _create(api_client, mode="live")
    assert response.status_code == 403
    assert APIKey.objects.count() == before


def test_key_cannot_grant_what_its_creator_lacks(make_api_key, merchant, client_for):
    creator = make_api_key(merchant=merchant, permissions=["api_keys:read", "api_keys:write", "payments:read"])
    client = client_for(creator)
    before = APIKey.objects.count()
    for perms in (["payments:write"], ["*"], ["payments:read", "audit:read"]):
        response = _create(client, permissions=perms)
        assert response.status_code == 403, perms
        assert response.json()["error"]["code"] == "permission_denied"
        assert response.json()["error"]["details"]["permissions"]
    assert APIKey.objects.count() == before
    # Nor by update.
    own = _create(client, permissions=["payments:read"]).json()["data"]
    response = client.patch(f"{URL}/{own['id']}", {"permissions": ["payments:write"]}, format="json")
    assert response.status_code == 403
    assert APIKey.objects.get(pk=own["id"]).permissions == ["payments:read"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ip_whitelist": ["10.0.0.300/8"]}, "ip_whitelist"),
        ({"ip_blacklist": ["not-an-ip"]}, "ip_blacklist"),
        ({"ip_whitelist": "10.0.0.0/8"}, "ip_whitelist"),
        ({"permissions": ["payments:read", "payments:destroy"]}, "permissions"),
        ({"permissions": []}, "permissions"),
        ({"rate_limit_per_minute": 0}, "rate_limit_per_minute"),
        ({"rate_limit_per_hour": -5}, "rate_limit_per_hour"),
        ({"rate_limit_per_day": "many"}, "rate_limit_per_day"),
        ({"name": "x" * 101}, "name"),
        ({"name": ""}, "name"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": "tomorrow"}, "expires_at"),
        ({"mode": "prod"}, "mode"),
        ({"colour": "blue"}, "colour"),
        ({"status": "revoked"}, "status"),
        ({"key_secret": "mine"}, "key_secret"),
    ],
)
def test_create_validation(api_client, body, field):
    before = APIKey.objects.count()
    response = _create(api_client, **body)
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["details"], error
    assert APIKey.objects.count() == before


@pytest.fixture
def roomy_client(make_api_key, merchant, client_for):
    """A client whose key's own limits are high (a key cannot create one with higher limits)."""
    created = make_api_key(
        merchant=merchant, rate_limit_per_minute=1_000_000, rate_limit_per_hour=10_000_000, rate_limit_per_day=10**8
    )
    return client_for(created)


def test_limits_need_not_be_ordered(roomy_client):
    response = _create(roomy_client, rate_limit_per_minute=500, rate_limit_per_hour=100, rate_limit_per_day=50)
    assert response.status_code == 201


def test_limits_above_the_servers_ceiling_are_refused_on_create_and_update(roomy_client, settings):
    api_client = roomy_client
    settings.API_KEY_MAX_RATE_LIMITS = {"minute": 1000, "hour": 50_000, "day": 1_000_000}
    response = _create(api_client, rate_limit_per_minute=1001, rate_limit_per_day=1_000_001)
    assert response.status_code == 400
    details = response.json()["error"]["details"]
    assert set(details) == {"rate_limit_per_minute", "rate_limit_per_day"}
    assert "1000" in details["rate_limit_per_minute"][0]

    created = _create(api_client, rate_limit_per_minute=1000, rate_limit_per_hour=50_000)
    assert created.status_code == 201
    key_id = created.json()["data"]["id"]
    changed = api_client.patch(f"{URL}/{key_id}", {"rate_limit_per_hour": 50_001}, format="json")
    assert changed.status_code == 400
    assert APIKey.objects.get(pk=key_id).rate_limit_per_hour == 50_000


def test_list_and_get_are_merchant_scoped(api_client, other_api_client):
    mine = _create(api_client).json()["data"]
    theirs = _create(other_api_client).json()["data"]
    listed = {k["id"] for k in api_client.get(URL).json()["data"]}
    assert mine["id"] in listed and str(api_client.api_key.api_key.pk) in listed
    assert theirs["id"] not in listed
    body = api_client.get(URL).json()
    assert set(body["pagination"]) == {"limit", "has_more", "next_cursor"}
    assert api_client.get(f"{URL}/{mine['id']}").status_code == 200
    assert api_client.get(f"{URL}/{mine['key_id']}").json()["data"]["id"] == mine["id"]


def test_another_merchants_key_is_404_and_untouched(api_client, other_api_client):
    theirs = _create(other_api_client, name="theirs").json()["data"]
    for response in (
        api_client.get(f"{URL}/{theirs['id']}"),
        api_client.get(f"{URL}/{theirs['key_id']}"),
        api_client.put(f"{URL}/{theirs['id']}", {"name": "pwned"}, format="json"),
        api_client.patch(f"{URL}/{theirs['id']}", {"permissions": ["payments:read"]}, format="json"),
        api_client.delete(f"{URL}/{theirs['id']}"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    stored = APIKey.objects.get(pk=theirs["id"])
    assert (stored.name, stored.status, stored.permissions) == ("theirs", "active", ["*"])


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", str(uuid.uuid4()), "ek_test_zzzz"])
def test_malformed_or_unknown_id_is_404(api_client, bad_id):
    assert api_client.get(f"{URL}/{bad_id}").status_code == 404


def test_update_changes_allowed_fields(api_client):
    key = _create(api_client).json()["data"]
    expires = (timezone.now() + timedelta(days=30)).isoformat()
    response = api_client.put(
        f"{URL}/{key['id']}",
        {
            "name": "renamed",
            "description": "d",
            "permissions": ["payments:read"],
            "rate_limit_per_minute": 5,
            "ip_blacklist": ["192.0.2.0/24"],
            "expires_at": expires,
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    data = response.json()["data"]
    assert data["name"] == "renamed" and data["permissions"] == ["payments:read"]
    assert data["rate_limit_per_minute"] == 5 and data["ip_blacklist"] == ["192.0.2.0/24"]
    assert data["expires_at"] is not None
    for body, field in (({"status": "active"}, "status"), ({"mode": "live"}, "mode"), ({"key_id": "x"}, "key_id")):
        response = api_client.patch(f"{URL}/{key['id']}", body, format="json")
        assert response.status_code == 400
        assert field in response.json()["error"]["details"]
    assert APIKey.objects.get(pk=key["id"]).mode == "test"


def test_update_invalidates_auth_cache_at_once(api_client, make_api_key, client_for):
    target = make_api_key(merchant=api_client.merchant, permissions=["api_keys:read"])
    client = client_for(target)
    assert client.get(URL).status_code == 200  # snapshot cached
    response = api_client.patch(f"{URL}/{target.api_key.pk}", {"permissions": ["payments:read"]}, format="json")
    assert response.status_code == 200
    assert client.get(URL).status_code == 403


def test_delete_revokes_at_once(api_client, make_api_key, client_for):
    target = make_api_key(merchant=api_client.merchant)
    client = client_for(target)
    assert client.get("/api/v1/auth/me").status_code == 200
    response = api_client.delete(f"{URL}/{target.api_key.pk}")
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "revoked"
    assert response.json()["data"]["revoked_at"]
    assert client.get("/api/v1/auth/me").status_code == 401
    # Idempotent, still listed, and final.
    assert api_client.delete(f"{URL}/{target.api_key.pk}").status_code == 200
    assert api_client.get(f"{URL}/{target.api_key.pk}").json()["data"]["status"] == "revoked"
    response = api_client.patch(f"{URL}/{target.api_key.pk}", {"name": "back"}, format="json")
    assert response.status_code == 409
    assert APIKey.objects.get(pk=target.api_key.pk).status == "revoked"


def test_list_filters_by_status(api_client, make_api_key):
    revoked = make_api_key(merchant=api_client.merchant)
    api_client.delete(f"{URL}/{revoked.api_key.pk}")
    ids = [k["id"] for k in api_client.get(URL, {"status": "revoked"}).json()["data"]]
    assert ids == [str(revoked.api_key.pk)]


def test_secrets_never_reach_the_logs(api_client, anon_client, client_for, caplog):
    caplog.set_level(logging.DEBUG)
    created = _create(api_client).json()["data"]
    secret = created["key_secret"]
    client = client_for(type("K", (), {"key": created["key"]})())
    client.get("/api/v1/auth/me")
    anon_client.post("/api/v1/auth/tokens", {"key_id": created["key_id"], "key_secret": secret}, format="json")
    bad = client_for()
    bad.credentials(HTTP_X_API_KEY=f"{created['key_id']}.{'x' * 43}")
    bad.get("/api/v1/auth/me")
    api_client.delete(f"{URL}/{created['id']}")
    client.get("/api/v1/auth/me")
    assert caplog.records  # something was logged (creation, rejection, revocation)
    assert secret not in caplog.text
    assert "x" * 43 not in caplog.text


def _expire_usage_minute(api_key) -> None:
    """The minute has passed: drop the flush marker wherever uses are counted (rate-limit Redis or cache)."""
    from django.conf import settings
    from django.core.cache import cache

    from accounts import ratelimit

    cache.delete(f"apikey:usage:flush:{api_key.pk}")
    if settings.RATE_LIMIT_REDIS_URL:
        ratelimit._client(settings.RATE_LIMIT_REDIS_URL).delete(ratelimit.use_keys(f"key:{api_key.key_id}")[1])


def _usage_is_written_at_most_once_a_minute(api_client) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    key = api_client.api_key.api_key
    for _ in range(3):
        assert api_client.get("/api/v1/auth/me").status_code == 200
    key.refresh_from_db()
    assert key.usage_count == 1 and key.last_used_at is not None  # first use flushed at once
    first_seen = key.last_used_at
    # Within the minute: counted, but no write at all.
    with CaptureQueriesContext(connection) as queries:
        assert api_client.get("/api/v1/auth/me").status_code == 200
    assert not [q for q in queries.captured_queries if 'UPDATE "accounts_apikey"' in q["sql"]]
    _expire_usage_minute(key)
    api_client.get("/api/v1/auth/me")
    key.refresh_from_db()
    assert key.usage_count == 5  # every use counted, written in one go
    assert key.last_used_at >= first_seen


def test_usage_is_written_at_most_once_a_minute(api_client):
    _usage_is_written_at_most_once_a_minute(api_client)


def test_usage_is_written_at_most_once_a_minute_without_redis_for_the_limits(api_client, settings):
    settings.RATE_LIMIT_REDIS_URL = None  # uses are counted in the cache, not by the rate-limit script
    _usage_is_written_at_most_once_a_minute(api_client)


def test_a_direct_usage_record_counts_in_the_cache_and_flushes_once_a_minute(api_key):
    key = api_key.api_key
    for _ in range(3):
        api_key_usage_record(api_key_id=str(key.pk))
    key.refresh_from_db()
    assert key.usage_count == 1
    _expire_usage_minute(key)
    api_key_usage_record(api_key_id=str(key.pk))
    key.refresh_from_db()
    assert key.usage_count == 4


def test_null_description_and_ip_lists_mean_empty(api_client):
    response = _create(api_client, description=None, ip_whitelist=None, expires_at=None)
    assert response.status_code == 201, response.json()
    data = response.json()["data"]
    assert (data["description"], data["ip_whitelist"], data["expires_at"]) == ("", [], None)
