"""Client IP resolution and per-key IP allow/deny lists (CIDR, IPv4 and IPv6).

The client IP is ``REMOTE_ADDR``. ``X-Forwarded-For`` is believed only when the direct peer is one of
``settings.TRUSTED_PROXIES``; then the list is walked from the right (the entries our own proxies
appended) and the first address that is not a trusted proxy is the client. Everything to the left of
it was written by the client and is never trusted.

Kept by hand rather than django-ipware (8.0): its trusted proxies are matched by position against the
tail of ``X-Forwarded-For`` and the direct peer is never checked, so a client connecting directly with
``X-Forwarded-For: <any address>, <one of our proxies>`` would be believed, and a request through a
single proxy (peer trusted, the header holding only the client) resolves to no address at all.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

from django.conf import settings

from core.exceptions import IPNotAllowed

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_ip(value: str | None) -> Address | None:
    """An address from a header or REMOTE_ADDR (tolerates ``[v6]:port``, ``v4:port``); ``None`` if garbage."""
    if not value:
        return None
    text = value.strip()
    if text.startswith("["):  # [2001:db8::1]:443
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # 203.0.113.7:5555
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_network(value: str) -> Network:
    """``"10.0.0.0/8"``, ``"2001:db8::/32"`` or a bare address -> a network. Raises ``ValueError``.

    An IPv4-mapped IPv6 network (``::ffff:127.0.0.1``, ``::ffff:127.0.0.0/104``) is the IPv4 network it
    maps (``127.0.0.1/32``, ``127.0.0.0/8``), as client addresses are (``parse_ip``): otherwise it could
    never match, silently not blocking in a deny list and locking the key out in an allow list."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("empty")
    network = ipaddress.ip_network(value.strip(), strict=False)
    if (
        isinstance(network, ipaddress.IPv6Network)
        and network.prefixlen >= 96
        and network.network_address.ipv4_mapped is not None
    ):
        return ipaddress.IPv4Network((network.network_address.ipv4_mapped, network.prefixlen - 96))
    return network


def normalize_cidrs(values: Iterable[str]) -> tuple[list[str], list[str]]:
    """-> (normalized CIDRs, invalid entries). ``"10.1.2.3/8"`` becomes ``"10.0.0.0/8"``."""
    normalized: list[str] = []
    invalid: list[str] = []
    for value in values:
        try:
            network = str(parse_network(value))
        except (ValueError, TypeError):
            invalid.append(str(value))
            continue
        if network not in normalized:
            normalized.append(network)
    return normalized, invalid


@lru_cache(maxsize=4096)
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    out = []
    for cidr in cidrs:
        try:
            out.append(parse_network(cidr))
        except ValueError:
            continue  # stored lists are validated on write; never crash a request on a bad row
    return tuple(out)


def in_networks(address: Address | None, cidrs: Iterable[str]) -> bool:
    if address is None:
        return False
    return any(address.version == net.version and address in net for net in _networks(tuple(cidrs)))


def _trusted_proxies() -> tuple[str, ...]:
    return tuple(settings.TRUSTED_PROXIES)


def client_ip(request) -> Address | None:
    """The caller's address (Django or DRF request), ``None`` when it cannot be determined."""
    meta = request.META
    remote = parse_ip(meta.get("REMOTE_ADDR"))
    proxies = _trusted_proxies()
    if remote is None or not proxies or not in_networks(remote, proxies):
        return remote
    forwarded = [part for part in (meta.get("HTTP_X_FORWARDED_FOR") or "").split(",") if part.strip()]
    candidate = remote
    for raw in reversed(forwarded):
        address = parse_ip(raw)
        if address is None:
            # A hop we cannot read: the last address we could attribute is the best we have.
            return candidate if not in_networks(candidate, proxies) else None
        candidate = address
        if not in_networks(address, proxies):
            return address
    # Every hop is a trusted proxy (an internal call): the left-most one is the origin.
    return candidate


def check_ip_rules(address: Address | None, *, allow: Iterable[str], deny: Iterable[str]) -> None:
    """Raise ``IPNotAllowed`` (403 ip_not_allowed) when the deny list matches or an allow list misses.

    The deny list wins over the allow list. An unknown address passes a deny-only rule set but never
    an allow list.
    """
    allow = list(allow or [])
    deny = list(deny or [])
    if deny and in_networks(address, deny):
        raise IPNotAllowed(details={"ip": str(address)})
    if allow and not in_networks(address, allow):
        raise IPNotAllowed(details={"ip": str(address) if address else None})
