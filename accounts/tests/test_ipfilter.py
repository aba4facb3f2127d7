"""IP allow/deny lists (CIDR, IPv4 and IPv6) and client IP resolution behind trusted proxies."""

from __future__ import annotations

import pytest
from django.test import RequestFactory, override_settings

from accounts.ipfilter import client_ip, normalize_cidrs

ME = "/api/v1/auth/me"


def _ip(remote, xff=None):
    meta = {"REMOTE_ADDR": remote}
    if xff is not None:
        meta["HTTP_X_FORWARDED_FOR"] = xff
    address = client_ip(RequestFactory().get("/", **meta))
    return str(address) if address else None


def test_remote_addr_without_trusted_proxies():
    assert _ip("203.0.113.5", "10.0.0.1") == "203.0.113.5"  # X-Forwarded-For ignored


@override_settings(TRUSTED_PROXIES=["10.0.0.0/8", "fd00::/8"])
def test_forwarded_for_only_from_trusted_proxies():
    assert _ip("10.0.0.2", "198.51.100.1") == "198.51.100.1"
    # The right-most untrusted hop wins; whatever the client wrote on the left is ignored.
    assert _ip("10.0.0.2", "1.1.1.1, 198.51.100.1, 10.0.0.9") == "198.51.100.1"
    assert _ip("fd00::1", "2001:db8::7") == "2001:db8::7"
    assert _ip("203.0.113.5", "198.51.100.1") == "203.0.113.5"  # untrusted peer: header ignored
    assert _ip("10.0.0.2", None) == "10.0.0.2"
    assert _ip("10.0.0.2", "10.0.0.3, 10.0.0.4") == "10.0.0.3"
    assert _ip("10.0.0.2", "junk, 198.51.100.1") == "198.51.100.1"


def test_address_forms():
    assert _ip("::ffff:192.0.2.1") == "192.0.2.1"
    assert _ip("not-an-ip") is None


def test_normalize_cidrs():
    assert normalize_cidrs(["10.1.2.3/8", "2001:DB8::1/32", "192.0.2.7", "10.0.0.0/8"]) == (
        ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7/32"],
        [],
    )
    assert normalize_cidrs(["300.1.1.1", "", "10.0.0.0/33"])[1] == ["300.1.1.1", "", "10.0.0.0/33"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("allow", "deny", "remote", "status"),
    [
        (["10.0.0.0/8"], [], "10.1.2.3", 200),
        (["10.0.0.0/8"], [], "11.0.0.1", 403),
        ([], ["192.0.2.0/24"], "192.0.2.55", 403),
        ([], ["192.0.2.0/24"], "192.0.3.1", 200),
        (["10.0.0.0/8"], ["10.9.0.0/16"], "10.9.1.1", 403),  # deny wins
        (["2001:db8::/32"], [], "2001:db8::5", 200),
        (["2001:db8::/32"], [], "2001:db9::5", 403),
        ([], ["2001:db8:1::/48"], "2001:db8:1::9", 403),
        (["10.0.0.0/8"], [], "::ffff:10.0.0.1", 200),
    ],
)
def test_ip_rules(make_api_key, merchant, client_for, allow, deny, remote, status):
    created = make_api_key(merchant=merchant, ip_whitelist=allow, ip_blacklist=deny)
    response = client_for(created, REMOTE_ADDR=remote).get(ME)
    assert response.status_code == status
    if status == 403:
        assert response.json()["error"]["code"] == "ip_not_allowed"


@pytest.mark.django_db
def test_ip_rules_use_forwarded_for_only_behind_trusted_proxy(make_api_key, merchant, client_for):
    created = make_api_key(merchant=merchant, ip_whitelist=["198.51.100.0/24"])
    proxied = client_for(created, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.20")
    assert proxied.get(ME).status_code == 403  # no trusted proxies configured: spoofing is useless
    with override_settings(TRUSTED_PROXIES=["10.0.0.0/8"]):
        assert proxied.get(ME).status_code == 200
        spoofed = client_for(created, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.20, 203.0.113.9")
        assert spoofed.get(ME).status_code == 403


@pytest.mark.django_db
def test_ip_rules_apply_to_jwts_from_the_key(make_api_key, merchant, client_for, anon_client):
    created = make_api_key(merchant=merchant, ip_blacklist=["192.0.2.0/24"])
    body = {"key_id": created.api_key.key_id, "key_secret": created.secret}
    access = anon_client.post("/api/v1/auth/tokens", body, format="json").json()["data"]["access_token"]
    assert client_for(bearer=access).get(ME).status_code == 200
    response = client_for(bearer=access, REMOTE_ADDR="192.0.2.10").get(ME)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "ip_not_allowed"


def test_ipv4_mapped_networks_are_normalized_to_ipv4():
    assert normalize_cidrs(["::ffff:127.0.0.1", "::ffff:127.0.0.0/104", "::FFFF:10.1.2.3/120"]) == (
        ["127.0.0.1/32", "127.0.0.0/8", "10.1.2.0/24"],
        [],
    )
    # Shorter than /96 is not (only) IPv4-mapped space: kept as IPv6.
    assert normalize_cidrs(["::ffff:0:0/95"])[0] == ["::fffe:0:0/95"]


@pytest.mark.django_db
@pytest.mark.parametrize("mapped", ["::ffff:127.0.0.1", "::ffff:127.0.0.0/104"])
@pytest.mark.parametrize("remote", ["127.0.0.1", "::ffff:127.0.0.1"])
def test_ipv4_mapped_deny_list_blocks_the_ipv4_client(make_api_key, merchant, client_for, mapped, remote):
    created = make_api_key(merchant=merchant, ip_blacklist=[mapped])
    assert created.api_key.ip_blacklist == [normalize_cidrs([mapped])[0][0]]
    response = client_for(created, REMOTE_ADDR=remote).get(ME)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "ip_not_allowed"
    assert client_for(created, REMOTE_ADDR="192.0.2.1").get(ME).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("mapped", ["::ffff:127.0.0.1", "::ffff:127.0.0.0/104"])
def test_ipv4_mapped_allow_list_lets_the_ipv4_client_in(make_api_key, merchant, client_for, mapped):
    created = make_api_key(merchant=merchant, ip_whitelist=[mapped])
    assert client_for(created, REMOTE_ADDR="127.0.0.1").get(ME).status_code == 200
    assert client_for(created, REMOTE_ADDR="192.0.2.1").get(ME).status_code == 403


@pytest.mark.django_db
def test_ipv4_mapped_forms_through_the_api_are_stored_normalized(api_client):
    response = api_client.post(
        "/api/v1/auth/api-keys",
        {"name": "mapped", "ip_blacklist": ["::ffff:127.0.0.1"], "ip_whitelist": ["::ffff:10.0.0.0/104"]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    data = response.json()["data"]
    assert data["ip_blacklist"] == ["127.0.0.1/32"]
    assert data["ip_whitelist"] == ["10.0.0.0/8"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "mapped", "remote", "status"),
    [
        ("ip_blacklist", "::ffff:127.0.0.1", "127.0.0.1", 403),
        ("ip_blacklist", "::ffff:127.0.0.0/104", "127.9.9.9", 403),
        ("ip_whitelist", "::ffff:127.0.0.1", "127.0.0.1", 200),
        ("ip_whitelist", "::ffff:127.0.0.0/104", "127.9.9.9", 200),
    ],
)
def test_rows_stored_before_normalization_match_too(make_api_key, merchant, client_for, field, mapped, remote, status):
    from accounts.models import APIKey

    created = make_api_key(merchant=merchant)
    APIKey.objects.filter(pk=created.api_key.pk).update(**{field: [mapped]})  # as an older version stored it
    assert client_for(created, REMOTE_ADDR=remote).get(ME).status_code == status
