"""The stack the benchmark loads: ``scripts/stack.py``'s, with production settings and gunicorn serving
``bench.floor_wsgi`` (the FLOOR endpoint next to EasyPay), plus what the bench reads off it while a
scenario runs (CPU, memory, Redis commands, PostgreSQL transactions and rows, the Celery backlog)."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from scripts.loopback import http_request
from scripts.processes import group_pids
from scripts.stack import Stack, StackOptions

from .config import Config


def proc_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def memory_kb(pid: int) -> dict:
    values = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    except OSError:
        return {}
    return {"pid": pid, "rss_kb": values.get("VmRSS"), "peak_rss_kb": values.get("VmHWM")}


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)


class BenchStack(Stack):
    """Redis db ``cfg.redis_url`` (flushed before and after), a fresh ``easypay_bench_<time>_<pid>``
    database (dropped unless BENCH_KEEP_DB=1), the emulator without a state file (none is needed: a
    missing emulator skips the POST scenarios), no beat; ``bench/run.sh`` owns ``state_dir``."""

    def __init__(self, cfg: Config, state_dir: Path):
        super().__init__(
            StackOptions(
                tag="",
                name="bench",
                db_prefix="easypay_bench",
                state_dir=state_dir,
                settings_module="config.settings.production",
                wsgi_app="bench.floor_wsgi:application",
                pg_admin_url=cfg.pg_admin_url,
                reap_stale_databases=False,  # bench/run.sh drops its own database, even after a crash
                keep_db=cfg.keep_db,
                private_redis=False,
                redis_url=cfg.redis_url,
                gunicorn_workers=cfg.workers,
                gunicorn_threads=cfg.threads,
                gunicorn_args=("--keep-alive", "5", "--timeout", "60", "--graceful-timeout", "10", "--backlog", "2048"),
                celery_pool=cfg.celery_pool,
                celery_concurrency=cfg.celery_concurrency,
                celery_loglevel="WARNING",
                wait_for_celery=False,
                beat=False,
                emulator_db=False,
                emulator_required=False,
                handle_signals=False,  # bench/run.py handles SIGINT/SIGTERM and stops the stack itself
                env={"LOG_LEVEL": cfg.log_level},
            )
        )
        self.cfg = cfg

    def worker_pids(self) -> list[int]:
        return self.gunicorn_worker_pids()

    def emulator_latency(self, latency_ms: int) -> None:
        reply = http_request(self.emulator_port, "POST", "/_emulator/config", {"latency_ms": latency_ms})
        if reply.status != 200:
            raise RuntimeError(f"emulator config failed: {reply.status} {reply.body}")

    def cpu_snapshot(self) -> dict:
        snap = {"gunicorn_workers": sum(proc_cpu_seconds(p) for p in self.worker_pids())}
        for name in ("celery", "emulator"):
            proc = self.procs.children.get(name)
            snap[name] = sum(proc_cpu_seconds(p) for p in group_pids(proc.pid)) if proc else 0.0
        snap["machine"] = machine_cpu()
        return snap

    def counters(self) -> dict:
        """Server-side counters to divide by the request count: Redis commands (whole server: other
        users of this Redis add noise) and this database's transactions and row writes."""
        import redis

        out: dict = {}
        with contextlib.suppress(Exception):
            stats = redis.Redis.from_url(self.redis_url).info("commandstats")
            out["redis_commands"] = sum(v.get("calls", 0) for v in stats.values())
        with self.admin_connection() as conn:
            row = conn.execute(
                "SELECT xact_commit + xact_rollback, tup_inserted, tup_updated, tup_fetched "
                "FROM pg_stat_database WHERE datname = %s",
                (self.db_name,),
            ).fetchone()
        out.update(pg_transactions=row[0], pg_rows_inserted=row[1], pg_rows_updated=row[2], pg_rows_fetched=row[3])
        return out

    def celery_backlog(self) -> int | None:
        import redis

        try:
            return int(redis.Redis.from_url(self.redis_url).llen("celery"))
        except Exception:
            return None

    def wait_celery_drained(self, timeout: float) -> dict:
        """Wait until the default queue is empty (tasks left by the POST scenarios) before the fan-out."""
        started = time.monotonic()
        first = self.celery_backlog()
        backlog = first
        while backlog and time.monotonic() - started < timeout:
            time.sleep(1)
            backlog = self.celery_backlog()
        return {"backlog_before": first, "backlog_after": backlog, "seconds": round(time.monotonic() - started, 1)}

    def db_connections(self) -> int:
        with self.admin_connection() as conn:
            return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (self.db_name,)).fetchone()[
                0
            ]
