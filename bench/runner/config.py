"""The benchmark's knobs (``BENCH_*`` environment variables, see bench/README.md) and its scenarios."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from scripts.processes import make_log

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
LUA = BENCH / "lua"
RESULTS = BENCH / "results"


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


log = make_log("bench")


@dataclass
class Config:
    duration: int = field(default_factory=lambda: env_int("BENCH_DURATION", 25))
    warmup: int = field(default_factory=lambda: env_int("BENCH_WARMUP", 3))
    workers: int = field(default_factory=lambda: env_int("BENCH_WORKERS", 4))
    threads: int = field(default_factory=lambda: env_int("BENCH_THREADS", 16))
    celery_concurrency: int = field(default_factory=lambda: env_int("BENCH_CELERY_CONCURRENCY", 2))
    celery_pool: str = field(default_factory=lambda: os.environ.get("BENCH_CELERY_POOL") or "prefork")
    payments: int = field(default_factory=lambda: env_int("BENCH_PAYMENTS", 1000))
    webhook_payments: int = field(default_factory=lambda: env_int("BENCH_WEBHOOK_PAYMENTS", 300))
    wrk_threads: int = field(default_factory=lambda: env_int("BENCH_WRK_THREADS", 2))
    scenarios: str = field(default_factory=lambda: os.environ.get("BENCH_SCENARIOS") or "all")
    profile: bool = field(default_factory=lambda: os.environ.get("BENCH_PROFILE", "0") in ("1", "true", "yes"))
    profile_scenarios: str = field(
        default_factory=lambda: os.environ.get("BENCH_PROFILE_SCENARIOS") or "get_by_id,list,post,post_slow"
    )
    pg_admin_url: str = field(
        default_factory=lambda: os.environ.get("BENCH_PG_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
    )
    redis_url: str = field(default_factory=lambda: os.environ.get("BENCH_REDIS_URL") or "redis://127.0.0.1:6379/10")
    log_level: str = field(default_factory=lambda: os.environ.get("BENCH_LOG_LEVEL") or "INFO")
    keep_db: bool = field(default_factory=lambda: os.environ.get("BENCH_KEEP_DB", "0") == "1")


@dataclass
class Scenario:
    name: str
    title: str
    script: str
    connections: int
    needs: tuple[str, ...]
    latency_ms: int | None = None
    targets: dict = field(default_factory=dict)


SCENARIOS = [
    Scenario("floor", "FLOOR /__floor (1 PK read, no Django)", "floor.lua", 32, ("floor",)),
    Scenario(
        "get_by_id",
        "GET /payments/{id}",
        "get_payment.lua",
        32,
        ("get",),
        targets={"rps_min": 1000, "p95_ms_max": 50, "floor_ratio_min": 0.40},
    ),
    Scenario("list", "GET /payments?limit=20", "list_payments.lua", 32, ("list",)),
    Scenario(
        "post",
        "POST /payments (processor 0 ms)",
        "post_payment.lua",
        32,
        ("post",),
        latency_ms=0,
        targets={"rps_min": 300, "p95_ms_max": 200},
    ),
    Scenario(
        "post_slow",
        "POST /payments (processor 300 ms)",
        "post_payment.lua",
        128,
        ("post",),
        latency_ms=300,
        targets={"rps_min": 150, "p95_ms_max": 1000, "errors_max": 0},
    ),
    Scenario("mixed", "mixed 80% GET id / 20% POST", "mixed.lua", 32, ("get", "post"), latency_ms=0),
]
ERROR_RATE_MAX = 0.001
