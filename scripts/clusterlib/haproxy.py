"""The cluster's balancer: HAProxy in front of the web instances, health-checking ``/health/ready``."""

from __future__ import annotations

import subprocess

from scripts.processes import port_open

from .topology import ClusterError, ClusterState, binary, clean_env, wait_until


class HaproxyMixin(ClusterState):
    def start_haproxy(self, port: int, web_ports: list[int]) -> None:
        servers = "\n".join(f"    server web{i} 127.0.0.1:{p} check" for i, p in enumerate(web_ports, start=1))
        # When every instance says "not ready" at once, the cause is shared (Redis failing over): rather
        # than answering 503 itself, the balancer then sends to all of them (backups, no checks).
        # A server marked down keeps its in-flight requests (no `on-marked-down shutdown-sessions`): during
        # a Redis failover every instance is briefly not ready, and cutting their sessions answered 502s.
        backups = "\n".join(
            f"    server web{i}-fallback 127.0.0.1:{p} backup" for i, p in enumerate(web_ports, start=1)
        )
        config = f"""global
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    timeout http-keep-alive 10s
    retries 3
    option redispatch
    option allbackups

frontend easypay
    bind 127.0.0.1:{port}
    default_backend web

backend web
    balance roundrobin
    option httpchk
    http-check send meth GET uri /health/ready ver HTTP/1.1 hdr Host 127.0.0.1
    http-check expect status 200
    default-server inter 1s fall 2 rise 2
{servers}
{backups}
"""
        conf = self.dir / "haproxy.cfg"
        conf.write_text(config)
        check = subprocess.run([binary("haproxy"), "-c", "-f", str(conf)], capture_output=True, text=True, check=False)  # noqa: S603
        if check.returncode != 0:
            raise ClusterError(f"haproxy configuration refused: {check.stdout}{check.stderr}")
        self.spawn("lb", [binary("haproxy"), "-f", str(conf), "-db"], clean_env())
        wait_until(lambda: port_open(port), 20, f"HAProxy on port {port}")
