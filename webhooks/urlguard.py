"""SSRF guard for merchant webhook URLs.

Unless ``settings.WEBHOOK_ALLOW_PRIVATE_URLS`` is on, a URL may only lead to public unicast
addresses: loopback, private, shared (CGNAT), link-local, multicast, reserved, unspecified and the
cloud metadata addresses are refused, including IPv4 addresses hidden in IPv6 (mapped, NAT64, 6to4,
Teredo). The check runs when an endpoint is saved and again before every delivery, and the delivery
then connects to exactly the address that was checked (see ``transport``), so a DNS answer that
changes in between (rebinding) cannot redirect it. Redirects are never followed.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

MAX_URL_LENGTH = 2048
METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack ...
        ipaddress.ip_address("fd00:ec2::254"),  # AWS IMDS over IPv6
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
        ipaddress.ip_address("169.254.170.2"),  # ECS task metadata
    }
)
BLOCKED_HOSTNAMES = frozenset({"localhost", "metadata", "metadata.google.internal", "instance-data"})
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeURL(ValueError):
    """The URL is malformed or leads somewhere webhooks must not go."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written (lower-cased, brackets stripped for IPv6)
    port: int
    path: str  # path and query, at least "/"
    host_header: str


def parse(url: str) -> Target:
    """Syntax only: http(s), a host, no credentials, at most 2048 characters."""
    if not isinstance(url, str) or not url:
        raise UnsafeURL("Enter a URL.")
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURL(f"The URL must be at most {MAX_URL_LENGTH} characters.")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        raise UnsafeURL("The URL must not contain whitespace or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL("Enter a valid URL.") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeURL("The URL must use http or https.")
    host = (parts.hostname or "").lower()
    if not host:
        raise UnsafeURL("The URL must have a host.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL("The URL must not contain credentials.")
    if port is None:
        port = 443 if scheme == "https" else 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    shown = f"[{host}]" if ":" in host else host
    default_port = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
    return Target(scheme, host, port, path, shown if default_port else f"{shown}:{port}")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def address_refusal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why ``ip`` may not receive webhooks, or None when it is a public unicast address."""
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            reason = address_refusal(inner)
            if reason:
                return reason
    checks = (
        ("is_unspecified", "an unspecified address"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_private", "a private address"),
        ("is_reserved", "a reserved address"),
    )
    for attr, reason in checks:
        if getattr(ip, attr):
            return reason
    if not ip.is_global:
        return "a non-public address"
    return None


def _literal_ip(host: str):
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def resolve(target: Target) -> list[str]:
    """Every address ``target.host`` resolves to (a literal IP resolves to itself)."""
    literal = _literal_ip(target.host)
    if literal is not None:
        return [str(literal)]
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeURL(f"The host {target.host!r} could not be resolved.") from exc
    seen: list[str] = []
    for info in infos:
        addr = info[4][0].split("%", 1)[0]
        if addr not in seen:
            seen.append(addr)
    if not seen:
        raise UnsafeURL(f"The host {target.host!r} could not be resolved.")
    return seen


def _check_hostname(target: Target) -> None:
    host = target.host.rstrip(".")
    if host in BLOCKED_HOSTNAMES or host.endswith((".localhost", ".internal", ".local")):
        raise UnsafeURL("The URL must point to a public host.")


def check_addresses(addresses: list[str]) -> None:
    for addr in addresses:
        reason = address_refusal(ipaddress.ip_address(addr))
        if reason:
            raise UnsafeURL(f"The URL resolves to {reason} ({addr}), which webhooks may not reach.")


def validate_for_save(url: str) -> Target:
    """At creation and update: syntax, then (unless private URLs are allowed) the destination.

    A host that does not resolve right now is accepted (DNS may be set up later); the check before
    each delivery refuses it if it then resolves somewhere forbidden.
    """
    target = parse(url)
    if settings.WEBHOOK_ALLOW_PRIVATE_URLS:
        return target
    _check_hostname(target)
    try:
        addresses = resolve(target)
    except UnsafeURL:
        if _literal_ip(target.host) is not None:
            raise
        return target
    check_addresses(addresses)
    return target


def destination_for_delivery(url: str) -> tuple[Target, list[str]]:
    """Before a delivery: the checked target and the addresses (all checked) to connect to, in order."""
    target = parse(url)
    allow_private = settings.WEBHOOK_ALLOW_PRIVATE_URLS
    if not allow_private:
        _check_hostname(target)
    addresses = resolve(target)
    if not allow_private:
        check_addresses(addresses)
    return target, addresses
