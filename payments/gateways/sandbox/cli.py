"""Command-line options shared by ``manage.py anet_sandbox`` and ``python -m payments.gateways.sandbox``."""

from __future__ import annotations

import argparse
import json
import sys

from .server import Credentials, SandboxServer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8999, help="port (default 8999; 0 picks a free one)")
    parser.add_argument("--latency-ms", type=int, default=0, help="delay every XML API reply by N ms")
    parser.add_argument("--webhook-url", default=None, help="POST signed Authorize.Net webhooks here")
    parser.add_argument(
        "--settle-delay-seconds",
        type=float,
        default=0.0,
        help="settle captures and refunds this long after they happen (default 0: at once)",
    )
    parser.add_argument("--db", default=None, help="keep state in this SQLite file (default: in memory)")
    parser.add_argument("--json", action="store_true", help="print the listening address as JSON")


def run(options: dict, credentials: Credentials) -> None:
    """Start a server from parsed options and serve until interrupted."""
    server = SandboxServer(
        options["host"],
        options["port"],
        latency_ms=options["latency_ms"],
        webhook_url=options["webhook_url"],
        settle_delay_seconds=options["settle_delay_seconds"],
        db_path=options["db"],
        **credentials,
    )
    if options["json"]:
        print(json.dumps({"url": server.url, "host": server.host, "port": server.port}), flush=True)
    else:
        print(f"Authorize.Net sandbox emulator listening on {server.url} (Ctrl-C to stop)", flush=True)
    sys.stdout.flush()
    server.serve_forever()
