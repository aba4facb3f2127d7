"""Pick the test backends for `make test` and print them as shell exports.

With DATABASE_URL / REDIS_URL set, they are used (and must answer). Otherwise PostgreSQL and Redis on
localhost are used when they answer, else SQLite and local memory; the choice is printed to stderr.
Under CI=true an unreachable PostgreSQL or Redis is an error, never a silent fallback.
"""

from __future__ import annotations

import os
import shlex
import socket
import sys
from urllib.parse import urlparse

LOCAL_PG = "postgres://postgres@127.0.0.1:5432/easypay"
LOCAL_REDIS = "redis://127.0.0.1:6379/1"


def pg_ok(url: str) -> bool:
    try:
        import psycopg
    except ImportError:
        return False
    parsed = urlparse(url)
    try:
        conn = psycopg.connect(
            host=parsed.hostname or "127.0.0.1",
            port=parsed.port or 5432,
            user=parsed.username or "postgres",
            password=parsed.password,
            dbname="postgres",
            connect_timeout=2,
        )
    except Exception:
        return False
    conn.close()
    return True


def redis_ok(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def main() -> int:
    ci = os.environ.get("CI", "").lower() == "true"
    exports: dict[str, str] = {}
    db_url = os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL")

    if db_url:
        if db_url.startswith("postgres") and not pg_ok(db_url):
            print(
                f"make test: PostgreSQL at DATABASE_URL does not answer ({urlparse(db_url).hostname})", file=sys.stderr
            )
            return 1
    elif pg_ok(LOCAL_PG):
        exports["DATABASE_URL"] = db_url = LOCAL_PG
    elif ci:
        print("make test: CI=true but PostgreSQL on 127.0.0.1:5432 does not answer", file=sys.stderr)
        return 1
    else:
        exports["DATABASE_URL"] = db_url = "sqlite:///test-db.sqlite3"

    if redis_url:
        if not redis_ok(redis_url):
            print(f"make test: Redis at REDIS_URL does not answer ({urlparse(redis_url).hostname})", file=sys.stderr)
            return 1
    elif redis_ok(LOCAL_REDIS):
        exports["REDIS_URL"] = redis_url = LOCAL_REDIS
    elif ci:
        print("make test: CI=true but Redis on 127.0.0.1:6379 does not answer", file=sys.stderr)
        return 1

    db_kind = "PostgreSQL" if db_url.startswith("postgres") else "SQLite (PostgreSQL-only tests skip)"
    cache_kind = "Redis" if redis_url else "local memory (Redis-only tests skip)"
    print(f"make test: database = {db_kind}; cache = {cache_kind}", file=sys.stderr)
    for key, value in exports.items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
