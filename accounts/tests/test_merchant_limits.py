"""Limits bound the merchant: an aggregate rate limit over all its keys, a cap on active keys, and no
key created or changed through the API with limits above its creator's."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from accounts.models import APIKey, MerchantUser
from accounts.services import api_key_create, merchant_limits_set
from core.exceptions import APIKeyLimitReached

from .factories import PASSWORD

ME = "/api/v1/auth/me"
KEYS = "/api/v1/auth/api-keys"
# Hour windows: a test cannot straddle a boundary the way it could a minute's.
MERCHANT_HOURLY_5 = {"minute": 1000, "hour": 5, "day": 1000}
ROOMY = {"rate_limit_per_minute": 100, "rate_limit_per_hour": 100, "rate_limit_per_day": 100}


@pytest.fixture(params=[pytest.param("redis", marks=pytest.mark.redis), "cache"])
def backend(request, settings):
    """Each limit test runs with the Redis script and with the in-process fallback."""
    from accounts import ratelimit

    if request.param == "cache":
        settings.RATE_LIMIT_REDIS_URL = None
    ratelimit.reset_state()
    return request.param


# --- the aggregate limit ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_all_of_a_merchants_keys_share_the_aggregate_limit(backend, settings, make_api_key, merchant, client_for):
    settings.MERCHANT_RATE_LIMITS = MERCHANT_HOURLY_5
    clients = [client_for(make_api_key(merchant=merchant, **ROOMY)) for _ in range(3)]
    for n in range(5):
        response = clients[n % 3].get(ME)
        assert response.status_code == 200
        # The tighter of key (100 left) and merchant is reported: the merchant's.
        assert response["X-RateLimit-Limit"] == "5"
        assert response["X-RateLimit-Remaining"] == str(4 - n)
        assert response["X-RateLimit-Limit-Hour"] == "5"
    for client in clients:
        blocked = client.get(ME)
        assert blocked.status_code == 429
        error = blocked.json()["error"]
        assert error["code"] == "rate_limited"
        assert error["details"]["scope"] == "merchant" and error["details"]["window"] == "hour"
        assert blocked["X-RateLimit-Remaining"] == "0"
        assert 0 < int(blocked["Retry-After"]) <= 3600
    # Another merchant is not affected.
    assert client_for(make_api_key(**ROOMY)).get(ME).status_code == 200


@pytest.mark.django_db
def test_headers_report_the_key_when_it_is_the_tighter(backend, settings, make_api_key, merchant, client_for):
    settings.MERCHANT_RATE_LIMITS = {"minute": 1000, "hour": 50, "day": 1000}
    client = client_for(
        make_api_key(merchant=merchant, rate_limit_per_minute=100, rate_limit_per_hour=3, rate_limit_per_day=100)
    )
    first = client.get(ME)
    assert (first["X-RateLimit-Limit"], first["X-RateLimit-Remaining"]) == ("3", "2")
    assert first["X-RateLimit-Limit-Hour"] == "3"
    client.get(ME)
    client.get(ME)
    blocked = client.get(ME)
    assert blocked.status_code == 429
    assert blocked.json()["error"]["details"]["scope"] == "credential"


@pytest.mark.django_db
def test_a_request_refused_by_its_key_does_not_use_the_merchants_budget(
    backend, settings, make_api_key, merchant, client_for
):
    settings.MERCHANT_RATE_LIMITS = MERCHANT_HOURLY_5
    small = client_for(
        make_api_key(merchant=merchant, rate_limit_per_minute=100, rate_limit_per_hour=2, rate_limit_per_day=100)
    )
    assert [small.get(ME).status_code for _ in range(4)] == [200, 200, 429, 429]
    other = client_for(make_api_key(merchant=merchant, **ROOMY))
    assert [other.get(ME).status_code for _ in range(4)] == [200, 200, 200, 429]


@pytest.mark.django_db
def test_jwts_of_the_merchant_count_against_the_aggregate(
    backend, settings, make_api_key, merchant, merchant_user, client_for, obtain
):
    settings.MERCHANT_RATE_LIMITS = MERCHANT_HOURLY_5
    key_client = client_for(make_api_key(merchant=merchant, **ROOMY))
    user_token = obtain(username="alice", password=PASSWORD)["access_token"]
    user_client = client_for(bearer=user_token)
    codes = [c.get(ME).status_code for c in (key_client, user_client) * 3]
    assert codes == [200, 200, 200, 200, 200, 429]


@pytest.mark.django_db
def test_staff_raise_a_merchants_aggregate_limit(backend, settings, make_api_key, merchant, client_for):
    settings.MERCHANT_RATE_LIMITS = MERCHANT_HOURLY_5
    client = client_for(make_api_key(merchant=merchant, **ROOMY))
    assert client.get(ME)["X-RateLimit-Limit"] == "5"  # the key's snapshot is now cached
    merchant_limits_set(merchant=merchant, rate_limit_per_hour=8)
    assert [client.get(ME).status_code for _ in range(8)] == [200] * 7 + [429]


@pytest.mark.django_db
def test_merchant_admin_page_shows_the_limits(admin_client, merchant):
    page = admin_client.get(f"/admin/accounts/merchant/{merchant.pk}/change/")
    assert page.status_code == 200
    for field in ("rate_limit_per_minute", "rate_limit_per_hour", "rate_limit_per_day", "max_active_api_keys"):
        assert f'name="{field}"'.encode() in page.content


# --- no escalation through the API -----------------------------------------------------------------


@pytest.mark.django_db
def test_a_key_cannot_create_a_key_with_higher_limits(make_api_key, merchant, client_for):
    creator = make_api_key(
        merchant=merchant,
        permissions=["api_keys:write"],
        rate_limit_per_minute=5,
        rate_limit_per_hour=50,
        rate_limit_per_day=500,
    )
    client = client_for(creator)
    refused = client.post(KEYS, {"name": "big", "rate_limit_per_minute": 60_000}, format="json")
    assert refused.status_code == 403, refused.json()
    error = refused.json()["error"]
    assert error["code"] == "permission_denied"
    assert set(error["details"]) == {"rate_limit_per_minute"}
    assert APIKey.objects.filter(merchant=merchant).count() == 1
    # Without limits given, the new key gets the defaults lowered to the creator's.
    created = client.post(KEYS, {"name": "small"}, format="json")
    assert created.status_code == 201, created.json()
    data = created.json()["data"]
    assert (data["rate_limit_per_minute"], data["rate_limit_per_hour"], data["rate_limit_per_day"]) == (5, 50, 500)
    # Equal is fine; above on update is refused and changes nothing.
    assert client.patch(f"{KEYS}/{data['id']}", {"rate_limit_per_hour": 50}, format="json").status_code == 200
    raised = client.patch(f"{KEYS}/{data['id']}", {"rate_limit_per_day": 501}, format="json")
    assert raised.status_code == 403
    assert APIKey.objects.get(pk=data["id"]).rate_limit_per_day == 500


@pytest.mark.django_db
def test_a_jwt_from_a_key_has_that_keys_ceiling(make_api_key, merchant, client_for, obtain):
    creator = make_api_key(merchant=merchant, rate_limit_per_minute=5, rate_limit_per_hour=50, rate_limit_per_day=500)
    client = client_for(bearer=obtain(creator)["access_token"])
    assert client.post(KEYS, {"name": "big", "rate_limit_per_minute": 6}, format="json").status_code == 403
    assert client.post(KEYS, {"name": "ok", "rate_limit_per_minute": 5}, format="json").status_code == 201


@pytest.mark.django_db
def test_a_merchant_users_ceiling_is_the_merchants_aggregate(settings, merchant, client_for, obtain):
    settings.MERCHANT_RATE_LIMITS = {"minute": 300, "hour": 3000, "day": 30000}
    user = get_user_model().objects.create_user("bob", "bob@merchant.example", PASSWORD)
    MerchantUser.objects.create(user=user, merchant=merchant, permissions=["api_keys:write"])
    client = client_for(bearer=obtain(username="bob", password=PASSWORD)["access_token"])
    assert client.post(KEYS, {"name": "big", "rate_limit_per_minute": 301}, format="json").status_code == 403
    assert client.post(KEYS, {"name": "ok", "rate_limit_per_minute": 300}, format="json").status_code == 201


@pytest.mark.django_db
def test_the_operators_ceiling_still_applies(settings, make_api_key, merchant, client_for):
    settings.API_KEY_MAX_RATE_LIMITS = {"minute": 1000, "hour": 50_000, "day": 1_000_000}
    creator = make_api_key(merchant=merchant, rate_limit_per_minute=10**6, rate_limit_per_hour=10**7)
    response = client_for(creator).post(KEYS, {"name": "big", "rate_limit_per_minute": 1001}, format="json")
    assert response.status_code == 400
    assert "rate_limit_per_minute" in response.json()["error"]["details"]


# --- the active-key cap ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_active_keys_are_capped_per_merchant(settings, api_client, merchant):
    settings.API_KEY_MAX_ACTIVE_PER_MERCHANT = 3
    ids = [api_client.post(KEYS, {"name": f"k{i}"}, format="json").json()["data"]["id"] for i in range(2)]
    refused = api_client.post(KEYS, {"name": "one too many"}, format="json")
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "api_key_limit_reached"
    assert error["details"] == {"active_keys": 3, "max_active_keys": 3}
    assert APIKey.objects.filter(merchant=merchant).count() == 3
    # Revoking one makes room; staff can raise the cap for the merchant.
    assert api_client.delete(f"{KEYS}/{ids[0]}").status_code == 200
    assert api_client.post(KEYS, {"name": "replacement"}, format="json").status_code == 201
    assert api_client.post(KEYS, {"name": "again"}, format="json").status_code == 409
    merchant_limits_set(merchant=merchant, max_active_api_keys=4)
    assert api_client.post(KEYS, {"name": "raised"}, format="json").status_code == 201
    assert APIKey.objects.filter(merchant=merchant, status="active").count() == 4


@pytest.mark.django_db
def test_the_operators_command_is_not_capped(settings, merchant):
    from django.core.management import call_command

    settings.API_KEY_MAX_ACTIVE_PER_MERCHANT = 1
    for _ in range(2):
        call_command("create_api_key", "--merchant", merchant.name, "--json", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert APIKey.objects.filter(merchant=merchant).count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_creations_never_pass_the_cap(settings, merchant):
    settings.API_KEY_MAX_ACTIVE_PER_MERCHANT = 3
    n = 8
    barrier = threading.Barrier(n)
    outcomes: list = [None] * n

    def worker(index):
        try:
            barrier.wait(timeout=10)
            api_key_create(merchant=merchant, name=f"racer {index}", permissions=["payments:read"])
            outcomes[index] = "created"
        except APIKeyLimitReached:
            outcomes[index] = "refused"
        except Exception as exc:  # surfaced by the assertion below
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(map(str, outcomes)) == ["created"] * 3 + ["refused"] * (n - 3), outcomes
    assert APIKey.objects.filter(merchant=merchant, status="active").count() == 3
