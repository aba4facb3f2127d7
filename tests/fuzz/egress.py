"""An egress guard for tests that let generated or hostile URLs reach the webhook transport.

Fuzzed webhook endpoints and SSRF probes must never make this machine send a packet anywhere but
loopback: no DNS query for a generated host name, no connection to a private or public address.
``EgressGuard`` patches ``socket.getaddrinfo`` (numeric hosts and ``localhost`` only, never a DNS
query) and ``socket.socket.connect``/``connect_ex`` (loopback and Unix sockets only); every refused
attempt is recorded so tests can assert that nothing tried to leave.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field

_real_getaddrinfo = socket.getaddrinfo
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_loopback(host: str) -> bool:
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


@dataclass
class EgressGuard:
    refused_lookups: list[str] = field(default_factory=list)
    refused_connections: list[tuple] = field(default_factory=list)
    connections: list[tuple] = field(default_factory=list)
    hosts: dict[str, str] = field(default_factory=dict)  # a fake DNS: name -> address, for SSRF tests

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else host
        if name is None or name == "localhost":
            return _real_getaddrinfo(host, port, family, type, proto, flags)
        if name in self.hosts:
            return _real_getaddrinfo(self.hosts[name], port, family, type, proto, flags | socket.AI_NUMERICHOST)
        try:
            # Numeric forms only (dotted, decimal, hex, octal, IPv6): resolved locally, never via DNS.
            return _real_getaddrinfo(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)
        except socket.gaierror:
            self.refused_lookups.append(str(name))
            raise socket.gaierror(socket.EAI_NONAME, f"egress guard: no DNS lookups in tests ({name!r})") from None

    def _allowed(self, sock, address) -> bool:
        if sock.family == getattr(socket, "AF_UNIX", None):
            return True
        host = address[0] if isinstance(address, tuple) else str(address)
        return _is_loopback(str(host))

    def connect(self, sock, address):
        if not self._allowed(sock, address):
            self.refused_connections.append(address)
            raise ConnectionRefusedError(f"egress guard: only loopback connections in tests ({address!r})")
        self.connections.append(address)
        return _real_connect(sock, address)

    def connect_ex(self, sock, address):
        if not self._allowed(sock, address):
            self.refused_connections.append(address)
            return 111  # ECONNREFUSED
        self.connections.append(address)
        return _real_connect_ex(sock, address)

    def install(self, monkeypatch) -> EgressGuard:
        guard = self
        monkeypatch.setattr(socket, "getaddrinfo", guard.getaddrinfo)
        monkeypatch.setattr(socket.socket, "connect", lambda sock, address: guard.connect(sock, address))
        monkeypatch.setattr(socket.socket, "connect_ex", lambda sock, address: guard.connect_ex(sock, address))
        return guard
