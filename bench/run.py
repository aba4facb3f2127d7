"""EasyPay load benchmark: start the production-like stack on loopback, load it with wrk, report.

Entry point: ``bash bench/run.sh`` (``make bench``); see bench/README.md. This file does the work:

1. a fresh PostgreSQL database ``easypay_bench_<time>_<pid>`` (dropped at the end), ``migrate``;
2. Redis db 10 (flushed before and after), the Authorize.Net emulator, gunicorn serving
   ``bench.floor_wsgi:application`` with production settings, a Celery worker, a webhook receiver;
3. a bench merchant with an API key of very high limits, ~1000 seeded payments;
4. each scenario probed once (a missing endpoint is reported as skipped, never measured), warmed up,
   then measured by wrk + bench/lua/*.lua; the FLOOR is measured in the same run;
5. the table on stdout and everything in bench/results/<timestamp>.json.

Every process is started in its own session and stopped by its process-group id in ``finally``
(``run.sh`` repeats that from the pid file if this process dies hard).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import secrets
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: bench/ is sys.path[0]
    sys.path.insert(0, str(ROOT))
from scripts.processes import Processes, children_of, free_port, group_pids, manage, migrate  # noqa: E402

BENCH = ROOT / "bench"
LUA = BENCH / "lua"
RESULTS = BENCH / "results"


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def log(message: str) -> None:
    print(f"[bench {datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


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


# --- processes ------------------------------------------------------------------------------------


def wait_http(port: int, path: str, timeout: float, ok=(200,), proc: subprocess.Popen | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            status, _, _ = http_call(port, "GET", path, timeout=2)
            if status in ok:
                return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def http_call(port: int, method: str, path: str, body=None, headers=None, timeout: float = 30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        hdrs = {"Accept": "application/json", **(headers or {})}
        if payload is not None:
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=payload, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = raw[:300].decode(errors="replace")
        return resp.status, data, dict(resp.getheaders())
    finally:
        conn.close()


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


# --- the stack ------------------------------------------------------------------------------------


class Stack:
    def __init__(self, cfg: Config, state_dir: Path):
        self.cfg = cfg
        self.state_dir = state_dir
        self.procs = Processes(state_dir, log=log)
        stamp = datetime.now().strftime("%Y%m%d%H%M%S")
        self.db_name = f"easypay_bench_{stamp}_{os.getpid()}"
        admin = urlparse(cfg.pg_admin_url)
        self.database_url = admin._replace(path=f"/{self.db_name}").geturl()
        self.web_port = free_port()
        self.emulator_port = free_port()
        self.receiver_port = free_port()
        self.python = str(ROOT / ".venv" / "bin" / "python")
        self.db_created = False
        self.emulator = False
        alphabet = string.ascii_letters + string.digits + "!#%()*+,-./:;<=>?@[]^_{|}~"
        secret_key = "".join(secrets.choice(alphabet) for _ in range(50))
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "SECRET_KEY": secret_key,
            "API_KEY_HASH_KEY": secrets.token_urlsafe(48),
            "JWT_SIGNING_KEY": secrets.token_urlsafe(48),
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": cfg.redis_url,
            "CELERY_BROKER_URL": cfg.redis_url,
            "CELERY_RESULT_BACKEND": cfg.redis_url,
            "AUTHORIZE_NET_ENDPOINT": f"http://127.0.0.1:{self.emulator_port}/xml/v1/request.api",
            "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
            "LOG_LEVEL": cfg.log_level,
            "PYTHONUNBUFFERED": "1",
        }

    # database ------------------------------------------------------------------
    def _admin(self):
        import psycopg

        return psycopg.connect(self.cfg.pg_admin_url, autocommit=True, connect_timeout=5)

    def db(self):
        import psycopg

        return psycopg.connect(self.database_url, autocommit=True, connect_timeout=5)

    def create_database(self) -> None:
        (self.state_dir / "dbname").write_text(self.db_name)
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        self.db_created = True
        log(f"created database {self.db_name}")

    def drop_database(self) -> None:
        if not self.db_created or self.cfg.keep_db:
            return
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        self.db_created = False
        log(f"dropped database {self.db_name}")

    def flush_redis(self) -> None:
        import redis

        redis.Redis.from_url(self.cfg.redis_url).flushdb()

    def manage(self, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
        return manage(self.python, self.env, *args, timeout=timeout)

    def migrate(self) -> None:
        migrate(self.python, self.env)
        log("migrated")

    # processes -----------------------------------------------------------------
    def start_emulator(self) -> None:
        argv = [self.python, "-m", "payments.gateways.sandbox", "--port", str(self.emulator_port)]
        check = subprocess.run(  # noqa: S603
            [*argv[:3], "--help"], cwd=ROOT, env=self.env, capture_output=True, timeout=60, check=False
        )
        if check.returncode != 0:
            log("Authorize.Net emulator not available (python -m payments.gateways.sandbox failed)")
            return
        proc = self.procs.start("emulator", argv, self.env)
        self.emulator = wait_http(self.emulator_port, "/_emulator/health", 30, proc=proc)
        if not self.emulator:
            log(f"emulator did not answer:\n{self.procs.tail('emulator')}")

    def emulator_latency(self, latency_ms: int) -> None:
        status, data, _ = http_call(self.emulator_port, "POST", "/_emulator/config", {"latency_ms": latency_ms})
        if status != 200:
            raise RuntimeError(f"emulator config failed: {status} {data}")

    def start_gunicorn(self) -> None:
        argv = [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "bench.floor_wsgi:application",
            "--bind",
            f"127.0.0.1:{self.web_port}",
            "--worker-class",
            "gthread",
            "--workers",
            str(self.cfg.workers),
            "--threads",
            str(self.cfg.threads),
            "--keep-alive",
            "5",
            "--timeout",
            "60",
            "--graceful-timeout",
            "10",
            "--backlog",
            "2048",
            "--log-level",
            "warning",
        ]
        proc = self.procs.start("gunicorn", argv, self.env)
        if not wait_http(self.web_port, "/health/live", 60, proc=proc):
            raise RuntimeError(f"gunicorn did not become ready:\n{self.procs.tail('gunicorn', 40)}")
        # Every worker answers (not just the first to boot).
        deadline = time.monotonic() + 30
        while len(self.worker_pids()) < self.cfg.workers and time.monotonic() < deadline:
            time.sleep(0.2)

    def start_celery(self) -> None:
        argv = [
            str(ROOT / ".venv" / "bin" / "celery"),
            "-A",
            "config",
            "worker",
            "--loglevel",
            "WARNING",
            "--pool",
            self.cfg.celery_pool,
            "--concurrency",
            str(self.cfg.celery_concurrency),
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            f"bench-{os.getpid()}@%h",
        ]
        self.procs.start("celery", argv, self.env)

    def start_receiver(self) -> None:
        argv = [self.python, str(ROOT / "scripts" / "webhook_receiver.py"), "--port", str(self.receiver_port)]
        proc = self.procs.start("receiver", argv, self.env)
        if not wait_http(self.receiver_port, "/stats", 15, proc=proc):
            raise RuntimeError(f"webhook receiver did not start:\n{self.procs.tail('receiver')}")

    def worker_pids(self) -> list[int]:
        proc = self.procs.children.get("gunicorn")
        return children_of(proc.pid) if proc else []

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
            stats = redis.Redis.from_url(self.cfg.redis_url).info("commandstats")
            out["redis_commands"] = sum(v.get("calls", 0) for v in stats.values())
        with self._admin() as conn:
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
            return int(redis.Redis.from_url(self.cfg.redis_url).llen("celery"))
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
        with self._admin() as conn:
            return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (self.db_name,)).fetchone()[
                0
            ]

    def stop(self) -> None:
        self.procs.stop_all()
        with contextlib.suppress(Exception):
            self.flush_redis()
        try:
            self.drop_database()
        except Exception as exc:
            log(f"could not drop {self.db_name}: {exc}")


# --- seeding and probes ---------------------------------------------------------------------------


@dataclass
class Seed:
    api_key: str = ""
    merchant_id: str = ""
    ids_file: str = ""
    payment_ids: int = 0
    seed_note: str = ""


def seed(stack: Stack, cfg: Config) -> Seed:
    result = stack.manage(
        "create_api_key",
        "--merchant",
        "bench",
        "--name",
        "bench key",
        "--rate-limit-per-minute",
        "100000000",
        "--rate-limit-per-hour",
        "1000000000",
        "--rate-limit-per-day",
        "2000000000",
        "--merchant-rate-limit-per-minute",
        "100000000",
        "--merchant-rate-limit-per-hour",
        "1000000000",
        "--merchant-rate-limit-per-day",
        "2000000000",
        "--json",
    )
    if result.returncode != 0:
        raise RuntimeError(f"create_api_key failed: {result.stderr[-2000:]}")
    key = json.loads(result.stdout.strip().splitlines()[-1])
    out = Seed(api_key=key["key"], merchant_id=key["merchant_id"], ids_file=str(stack.state_dir / "payment_ids"))
    seed_argv = [stack.python, "-m", "bench.seed", "--merchant-id", out.merchant_id]
    seed_argv += ["--count", str(cfg.payments), "--out", out.ids_file]
    seeded = subprocess.run(  # noqa: S603
        seed_argv,
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if seeded.returncode != 0:
        raise RuntimeError(f"seeding failed:\n{seeded.stderr[-3000:]}")
    info = json.loads(seeded.stdout.strip().splitlines()[-1])
    out.payment_ids = info.get("ids", 0)
    out.seed_note = info.get("reason", "")
    log(f"seeded merchant {out.merchant_id}: {info}")
    return out


def describe(status: int, data) -> str:
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        return f"{status} {data['error'].get('code')}: {data['error'].get('message')}"
    return f"{status} {str(data)[:200]}"


def probe(stack: Stack, seed_info: Seed, run_nonce: str) -> dict[str, str | None]:
    """None = usable; otherwise why the capability cannot be measured."""
    headers = {"X-API-Key": seed_info.api_key}
    reasons: dict[str, str | None] = {}
    status, data, _ = http_call(stack.web_port, "GET", f"/__floor?merchant={seed_info.merchant_id}")
    reasons["floor"] = None if status == 200 else f"floor failed: {describe(status, data)}"

    if not seed_info.payment_ids:
        reasons["get"] = f"skipped: no seeded payments ({seed_info.seed_note})"
    else:
        first_id = Path(seed_info.ids_file).read_text().split()[0]
        status, data, _ = http_call(stack.web_port, "GET", f"/api/v1/payments/{first_id}", headers=headers)
        reasons["get"] = None if status == 200 else _missing_or_failed(status, data)

    status, data, _ = http_call(stack.web_port, "GET", "/api/v1/payments?limit=20", headers=headers)
    reasons["list"] = None if status == 200 else _missing_or_failed(status, data)

    if not stack.emulator:
        reasons["post"] = "skipped: Authorize.Net emulator missing"
    else:
        body = {"amount": "1.00", "currency": "USD", "card_token": "tok_visa", "customer_id": "cust_probe"}
        status, data, _ = http_call(
            stack.web_port,
            "POST",
            "/api/v1/payments",
            body,
            headers={**headers, "Idempotency-Key": f"probe-{run_nonce}"},
        )
        reasons["post"] = None if status == 201 else _missing_or_failed(status, data)
    return reasons


def _missing_or_failed(status: int, data) -> str:
    if status in (404, 405):
        return f"skipped: endpoint missing ({describe(status, data)})"
    return f"skipped: probe failed ({describe(status, data)})"


# --- wrk ------------------------------------------------------------------------------------------


def run_wrk(stack: Stack, cfg: Config, scenario: Scenario, seed_info: Seed, duration: int, nonce: str) -> dict:
    env = {
        **os.environ,
        "BENCH_LUA_DIR": str(LUA),
        "BENCH_API_KEY": seed_info.api_key,
        "BENCH_NONCE": nonce,
        "BENCH_IDS_FILE": seed_info.ids_file,
        "BENCH_MERCHANT_ID": seed_info.merchant_id,
    }
    argv = [
        shutil.which("wrk") or "wrk",
        "-t",
        str(min(cfg.wrk_threads, scenario.connections)),
        "-c",
        str(scenario.connections),
        "-d",
        f"{duration}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA / scenario.script),
        f"http://127.0.0.1:{stack.web_port}",
    ]
    proc = subprocess.Popen(  # noqa: S603
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=duration + 60)
    except BaseException:  # a signal or a hang: never leave wrk loading the server
        proc.kill()
        proc.wait(5)
        raise
    line = next((ln for ln in stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{stdout[-2000:]}\n{stderr[-2000:]}")
    return json.loads(line.removeprefix("BENCH_JSON "))


def summarize(raw: dict) -> dict:
    seconds = raw["duration_us"] / 1e6
    sockets = sum(v for k, v in raw["errors"].items() if k != "status")
    errors = raw["non2xx"] + sockets
    lat = raw["latency_us"]
    return {
        "requests": raw["requests"],
        "seconds": round(seconds, 2),
        "rps": round(raw["requests"] / seconds, 1) if seconds else 0.0,
        "p50_ms": round(lat["p50"] / 1000, 2),
        "p90_ms": round(lat["p90"] / 1000, 2),
        "p95_ms": round(lat["p95"] / 1000, 2),
        "p99_ms": round(lat["p99"] / 1000, 2),
        "max_ms": round(lat["max"] / 1000, 2),
        "mean_ms": round(lat["mean"] / 1000, 2),
        "errors": errors,
        "non2xx": raw["non2xx"],
        "socket_errors": raw["errors"],
        "error_rate": round(errors / raw["requests"], 6) if raw["requests"] else None,
        "statuses": raw["statuses"],
    }


# --- profiling ------------------------------------------------------------------------------------


def py_spy() -> str | None:
    local = ROOT / ".venv" / "bin" / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def start_profile(
    stack: Stack, scenario: Scenario, stamp: str, duration: int
) -> list[tuple[str, subprocess.Popen, Path]]:
    """py-spy on the first worker with --gil (where the CPU goes: only the thread holding the GIL is
    sampled) and, when there is a second worker, without it (wall time of every busy thread, I/O waits
    included). Both workers serve the same traffic, so the two views describe the same requests."""
    exe = py_spy()
    workers = stack.worker_pids()
    if not exe or not workers:
        log("profiling requested but py-spy (or a worker) is missing: `.venv/bin/pip install py-spy`")
        return []
    started = []
    for kind, pid in zip(("gil", "wall"), workers, strict=False):
        out = RESULTS / f"{stamp}-{scenario.name}-{kind}-worker{pid}.txt"
        argv = [exe, "record", "--pid", str(pid), "--rate", "200", "--duration", str(duration)]
        argv += ["--format", "raw", "--output", str(out), "--nonblocking"]
        if kind == "gil":
            argv.append("--gil")
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # noqa: S603
        started.append((kind, proc, out))
    return started


def summarize_profile(path: Path, top: int = 25) -> dict:
    """Self and inclusive sample shares per function from py-spy's raw (collapsed) output."""
    total = 0
    self_counts: Counter = Counter()
    incl_counts: Counter = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_frame_name(f) for f in stack.split(";")]
        frames = [f for f in frames if f]
        if not frames:
            continue
        self_counts[frames[-1]] += n
        for name in set(frames):
            incl_counts[name] += n
    if not total:
        return {"samples": 0}

    def share(counter: Counter, keep=lambda name: True) -> list[dict]:
        rows = [(k, v) for k, v in counter.most_common() if keep(k)][:top]
        return [{"function": k, "samples": v, "percent": round(100 * v / total, 1)} for k, v in rows]

    def own_code(name: str) -> bool:
        return not any(x in name for x in ("site-packages", "/lib/python3", "<frozen"))

    return {
        "samples": total,
        "self": share(self_counts),
        "inclusive": share(incl_counts),
        "inclusive_project": share(incl_counts, own_code),
    }


def _frame_name(frame: str) -> str:
    """'func (path/to/file.py:123)' -> 'func (to/file.py)' with the venv/stdlib prefix trimmed."""
    frame = frame.strip()
    if frame.startswith(("process ", "thread ")):
        return ""
    func, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", str(ROOT) + "/"):
        if marker in path:
            prefix = "site-packages/" if marker == "site-packages/" else ""
            path = prefix + path.split(marker, 1)[1]
            break
    else:
        if "/lib/python3" in path:
            path = "stdlib/" + path.split("/lib/python3", 1)[1].split("/", 1)[-1]
    return f"{func} ({path})"


# --- scenarios ------------------------------------------------------------------------------------


def measure(stack: Stack, cfg: Config, scenario: Scenario, seed_info: Seed, stamp: str) -> dict:
    nonce = f"{stamp}-{scenario.name}-{secrets.token_hex(3)}"
    if scenario.latency_ms is not None and stack.emulator:
        stack.emulator_latency(scenario.latency_ms)
    if cfg.warmup:
        run_wrk(stack, cfg, scenario, seed_info, cfg.warmup, nonce + "-w")
    profiler = (
        start_profile(stack, scenario, stamp, max(1, cfg.duration - 2))
        if cfg.profile and scenario.name in cfg.profile_scenarios.split(",")
        else []
    )
    load_before = os.getloadavg()[0]
    before, counters_before = stack.cpu_snapshot(), stack.counters()
    raw = run_wrk(stack, cfg, scenario, seed_info, cfg.duration, nonce)
    after = stack.cpu_snapshot()
    time.sleep(0.6)  # pg_stat_database is flushed by backends at most every 500 ms
    counters_after = stack.counters()
    row = summarize(raw)
    row["load1_before"] = round(load_before, 2)
    if row["requests"]:
        row["per_request"] = {
            k: round((counters_after[k] - counters_before[k]) / row["requests"], 2)
            for k in counters_after
            if k in counters_before
        }
    busy = after["machine"][0] - before["machine"][0]
    total = after["machine"][1] - before["machine"][1]
    row["machine_cpu_percent"] = round(100 * busy / total, 1) if total else None
    cpu = {k: round(after[k] - before[k], 2) for k in after if k != "machine"}
    row["cpu_seconds"] = cpu
    if row["requests"]:
        row["web_cpu_ms_per_request"] = round(1000 * cpu["gunicorn_workers"] / row["requests"], 2)
    row["db_connections"] = stack.db_connections()
    row["worker_memory"] = [memory_kb(p) for p in stack.worker_pids()]
    for kind, proc, out in profiler or []:
        try:
            _, err = proc.communicate(timeout=cfg.duration + 30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGINT)
            _, err = proc.communicate(timeout=10)
        profile = row.setdefault("profile", {})
        if out.exists():
            profile[kind] = {"file": str(out.relative_to(ROOT)), **summarize_profile(out)}
        else:
            profile[kind] = {"error": (err or "")[-500:]}
    if scenario.latency_ms:
        stack.emulator_latency(0)
    return row


def cprofile_requests(stack: Stack, seed_info: Seed, stamp: str) -> dict:
    """Single-thread cProfile of GET/list/POST through the full Django stack (bench/cprofile_requests.py)."""
    log("profiling: single-thread cProfile of GET by id (cache hit and miss), list and POST")
    argv = [stack.python, "-m", "bench.cprofile_requests", "--api-key", seed_info.api_key]
    argv += ["--ids-file", seed_info.ids_file, "--out-dir", str(RESULTS), "--stamp", stamp]
    result = subprocess.run(  # noqa: S603
        argv,
        cwd=ROOT,
        env={**stack.env, "LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("{")]
    if result.returncode != 0 or not lines:
        return {"error": result.stderr[-2000:]}
    return json.loads(lines[-1])


def webhook_fanout(stack: Stack, cfg: Config, seed_info: Seed) -> dict:
    headers = {"X-API-Key": seed_info.api_key}
    drained = stack.wait_celery_drained(180)
    log(f"webhooks: Celery backlog from earlier scenarios: {drained}")
    status, data, _ = http_call(
        stack.web_port,
        "POST",
        "/api/v1/webhooks",
        {"url": f"http://127.0.0.1:{stack.receiver_port}/hook", "events": ["*"], "description": "bench receiver"},
        headers=headers,
    )
    if status != 201:
        return {"skipped": _missing_or_failed(status, data)}
    endpoint = data.get("data", {}) if isinstance(data, dict) else {}
    http_call(stack.receiver_port, "POST", "/reset", {"secret": endpoint.get("secret")})
    with stack.db() as conn:
        since = conn.execute("SELECT now()").fetchone()[0]

    stamp = secrets.token_hex(4)
    lock = threading.Lock()
    statuses: Counter = Counter()

    def create(i: int) -> None:
        body = {"amount": f"{1 + i % 900}.00", "currency": "USD", "card_token": "tok_visa", "customer_id": "cust_wh"}
        try:
            code, _, _ = http_call(
                stack.web_port,
                "POST",
                "/api/v1/payments",
                body,
                headers={**headers, "Idempotency-Key": f"wh-{stamp}-{i}"},
            )
        except OSError as exc:
            code = type(exc).__name__
        with lock:
            statuses[str(code)] += 1

    # The worker is stopped while the payments are created, so their events queue up; the restarted
    # worker's drain rate (first to last delivery at the receiver) is its capacity, not the POST rate.
    stack.procs.stop("celery")
    started = time.time()
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(create, range(cfg.webhook_payments)))
    generated = time.time()
    queued = stack.celery_backlog()
    stack.start_celery()
    worker_started = time.time()
    with stack.db() as conn:
        expected = conn.execute(
            "SELECT count(*) FROM webhooks_event WHERE merchant_id = %s AND created_at >= %s",
            (seed_info.merchant_id, since),
        ).fetchone()[0]
    last_count, last_progress, deadline = -1, time.monotonic(), time.monotonic() + 240
    stats: dict = {}
    while time.monotonic() < deadline:
        _, stats, _ = http_call(stack.receiver_port, "GET", "/stats")
        if stats["count"] >= expected > 0:
            break
        if stats["count"] != last_count:
            last_count, last_progress = stats["count"], time.monotonic()
        elif time.monotonic() - last_progress > 30:
            break
        time.sleep(0.5)
    first, last = stats.get("first"), stats.get("last")
    window = (last - first) if first and last and last > first else None
    return {
        "payments_requested": cfg.webhook_payments,
        "payment_statuses": dict(statuses),
        "generation_seconds": round(generated - started, 2),
        "generation_rps": round(cfg.webhook_payments / (generated - started), 1),
        "events_recorded": expected,
        "delivered": stats.get("count", 0),
        "unique_events_delivered": stats.get("unique", 0),
        "event_types": stats.get("types", {}),
        "signatures_ok": stats.get("signature_ok", 0),
        "signatures_bad": stats.get("signature_bad", 0),
        "delivery_window_seconds": round(window, 2) if window else None,
        "deliveries_per_second": round(stats["count"] / window, 1) if window else None,
        "tasks_queued_while_worker_stopped": queued,
        "first_delivery_after_worker_start_seconds": round(first - worker_started, 2) if first else None,
        "drain_seconds_after_worker_start": round(last - worker_started, 2) if last else None,
        "complete": bool(expected) and stats.get("unique", 0) >= expected,
        "celery_backlog_before": drained,
        "celery_backlog_after": stack.celery_backlog(),
    }


# --- report ---------------------------------------------------------------------------------------


def verdicts(name: str, row: dict, floor_rps: float | None) -> list[str]:
    scenario = next((s for s in SCENARIOS if s.name == name), None)
    out = []
    if row.get("error_rate") is not None and name != "floor":
        out.append(f"err<0.1% {'OK' if row['error_rate'] < ERROR_RATE_MAX else 'FAIL'}")
    if not scenario:
        return out
    t = scenario.targets
    if "rps_min" in t:
        out.append(f">={t['rps_min']}/s {'OK' if row['rps'] >= t['rps_min'] else 'FAIL'}")
    if "p95_ms_max" in t:
        out.append(f"p95<{t['p95_ms_max']}ms {'OK' if row['p95_ms'] < t['p95_ms_max'] else 'FAIL'}")
    if "floor_ratio_min" in t and floor_rps:
        ok = row["rps"] / floor_rps >= t["floor_ratio_min"]
        out.append(f">={int(t['floor_ratio_min'] * 100)}% floor {'OK' if ok else 'FAIL'}")
    if "errors_max" in t:
        out.append(f"0 errors {'OK' if row['errors'] <= t['errors_max'] else 'FAIL'}")
    return out


def print_table(report: dict) -> None:
    floor = report["scenarios"].get("floor", {})
    floor_rps = floor.get("rps")
    header = (
        f"{'scenario':<36} {'conn':>4} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'errors':>7} {'floor':>6} {'cpu ms/req':>10}  targets"
    )
    print()
    print(f"EasyPay benchmark {report['started_at']}  commit {report['git']['commit']}{report['git']['dirty']}")
    print(
        f"gunicorn gthread {report['config']['workers']}x{report['config']['threads']}, "
        f"{report['config']['duration']}s per scenario, {report['machine']['cpus']} CPUs"
    )
    print(header)
    print("-" * len(header))
    for s in SCENARIOS:
        row = report["scenarios"].get(s.name)
        if row is None:
            continue
        if "skipped" in row:
            print(f"{s.title:<36} {s.connections:>4}  {row['skipped']}")
            continue
        ratio = f"{row['rps'] / floor_rps:.0%}" if floor_rps and s.name != "floor" else "-"
        print(
            f"{s.title:<36} {s.connections:>4} {row['rps']:>8.1f} {row['p50_ms']:>8.1f} {row['p95_ms']:>8.1f} "
            f"{row['p99_ms']:>8.1f} {row['errors']:>7} {ratio:>6} {row.get('web_cpu_ms_per_request', 0):>10.2f}  "
            + ", ".join(verdicts(s.name, row, floor_rps))
        )
    wh = report["scenarios"].get("webhooks")
    if wh is not None:
        if "skipped" in wh:
            print(f"{'webhook fan-out':<36} {'':>4}  {wh['skipped']}")
        else:
            print(
                f"{'webhook fan-out (Celery -> receiver)':<36} {'':>4} "
                f"{wh.get('deliveries_per_second') or 0:>8.1f} events/s delivered; "
                f"{wh['delivered']}/{wh['events_recorded']} events "
                f"({wh['unique_events_delivered']} unique, {wh['signatures_bad']} bad signatures) from "
                f"{wh['payments_requested']} payments ({wh['generation_rps']}/s, worker stopped meanwhile); "
                f"backlog drained {wh['drain_seconds_after_worker_start']}s after the worker started"
            )
    print()
    print(f"{'per request':<36} {'redis cmds':>10} {'pg xacts':>9} {'rows ins':>9} {'rows upd':>9} {'machine cpu':>11}")
    for s in SCENARIOS:
        row = report["scenarios"].get(s.name) or {}
        per = row.get("per_request")
        if per:
            print(
                f"{s.title:<36} {per.get('redis_commands', 0):>10.2f} {per['pg_transactions']:>9.2f} "
                f"{per['pg_rows_inserted']:>9.2f} {per['pg_rows_updated']:>9.2f} {row['machine_cpu_percent']:>10.0f}%"
            )
    for s in SCENARIOS:
        profile = (report["scenarios"].get(s.name) or {}).get("profile") or {}
        for kind, data in profile.items():
            if not data.get("samples"):
                continue
            label = "CPU (GIL holder)" if kind == "gil" else "wall (busy threads)"
            print(f"\nprofile {s.name}, {label}, {data['samples']} samples, self time:")
            for item in data["self"][:12]:
                print(f"  {item['percent']:5.1f}%  {item['function']}")
    for name, data in (report.get("cprofile") or {}).items():
        if not isinstance(data, dict) or "cpu_ms_per_request" not in data:
            continue
        print(
            f"\ncProfile {name} (1 thread, no contention): {data['cpu_ms_per_request']} ms CPU, "
            f"{data['wall_ms_per_request']} ms wall per request; EasyPay functions, cumulative share of wall:"
        )
        for item in data.get("top_project", data["top_cumulative"])[:15]:
            print(f"  {item['cum_percent']:5.1f}%  {item['calls_per_request']:>6}/req  {item['function']}")
    mem = report.get("memory", {})
    if mem.get("start") and mem.get("end"):
        pairs = ", ".join(
            f"pid {a['pid']}: {a['rss_kb'] // 1024} -> {b['rss_kb'] // 1024} MiB (peak {b['peak_rss_kb'] // 1024})"
            for a, b in zip(mem["start"], mem["end"], strict=False)
            if a.get("rss_kb") and b.get("rss_kb")
        )
        print(f"gunicorn worker RSS start -> end: {pairs}")
    load = report["machine"].get("load_at_start") or [0]
    print(f"load average at start {load[0]:.2f}; per scenario in the JSON (load1_before)")
    print(f"JSON: {report.get('json_path')}")


def git_info() -> dict:
    def git(*args: str) -> str:
        result = subprocess.run(  # noqa: S603
            ["git", *args],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout.strip()

    return {"commit": git("rev-parse", "--short", "HEAD"), "dirty": "+dirty" if git("status", "--porcelain") else ""}


def selected(cfg: Config) -> set[str]:
    names = {s.name for s in SCENARIOS} | {"webhooks"}
    if cfg.scenarios == "all":
        return names
    chosen = {x.strip() for x in cfg.scenarios.split(",") if x.strip()}
    unknown = chosen - names
    if unknown:
        raise SystemExit(f"unknown BENCH_SCENARIOS {sorted(unknown)}; known: {sorted(names)}")
    return chosen | {"floor"}


def main() -> int:
    parser = argparse.ArgumentParser(description="EasyPay load benchmark (see bench/README.md)")
    parser.add_argument("--state-dir", default=None, help="scratch directory (pid file, logs, ids)")
    args = parser.parse_args()
    cfg = Config()
    chosen = selected(cfg)
    state_dir = Path(args.state_dir or tempfile.mkdtemp(prefix="easypay-bench-"))
    state_dir.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (bench/run.sh installs it: apt-get install -y wrk)")

    def on_signal(signum, _frame):
        # Once: a second Ctrl-C (or the wrapper forwarding the same one) must not cut the cleanup short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        log(f"signal {signum}: stopping and cleaning up")
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report: dict = {
        "started_at": stamp,
        "git": git_info(),
        "config": asdict(cfg) | {"pg_admin_url": "(redacted)"},
        "machine": {"cpus": os.cpu_count(), "load_before": os.getloadavg()},
        "scenarios": {},
        "memory": {},
    }
    quiet_wait = env_int("BENCH_QUIET_WAIT", 60)
    waited = time.monotonic()
    while os.getloadavg()[0] > 1.5 and time.monotonic() - waited < quiet_wait:
        time.sleep(5)
    report["machine"]["load_at_start"] = os.getloadavg()
    report["machine"]["waited_for_quiet_seconds"] = round(time.monotonic() - waited, 1)
    if os.getloadavg()[0] > 1.5:
        log(f"the machine is busy (load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs): figures will be low")
    stack = Stack(cfg, state_dir)
    report["stack"] = {
        "database": stack.db_name,
        "web_port": stack.web_port,
        "emulator_port": stack.emulator_port,
        "gunicorn": f"bench.floor_wsgi:application gthread --workers {cfg.workers} --threads {cfg.threads}",
        "celery": f"--pool {cfg.celery_pool} --concurrency {cfg.celery_concurrency}",
    }
    try:
        stack.flush_redis()
        stack.create_database()
        stack.migrate()
        stack.start_emulator()
        stack.start_receiver()
        stack.start_celery()
        stack.start_gunicorn()
        seed_info = seed(stack, cfg)
        reasons = probe(stack, seed_info, stamp)
        report["probes"] = reasons
        log(f"probes: {reasons}")
        report["memory"]["start"] = [memory_kb(p) for p in stack.worker_pids()]
        for scenario in SCENARIOS:
            if scenario.name not in chosen:
                continue
            missing = [reasons.get(n) for n in scenario.needs if reasons.get(n)]
            if missing:
                report["scenarios"][scenario.name] = {"skipped": "; ".join(missing)}
                log(f"{scenario.name}: {missing[0]}")
                continue
            log(f"{scenario.name}: {scenario.connections} connections, {cfg.duration}s")
            row = measure(stack, cfg, scenario, seed_info, stamp)
            report["scenarios"][scenario.name] = row
            log(f"{scenario.name}: {row['rps']} req/s p95 {row['p95_ms']} ms errors {row['errors']}")
        if cfg.profile and not any(reasons.get(n) for n in ("get", "post")):
            report["cprofile"] = cprofile_requests(stack, seed_info, stamp)
        if "webhooks" in chosen:
            if reasons.get("post"):
                report["scenarios"]["webhooks"] = {"skipped": reasons["post"]}
            else:
                log(f"webhooks: {cfg.webhook_payments} payments, one endpoint, Celery delivers")
                report["scenarios"]["webhooks"] = webhook_fanout(stack, cfg, seed_info)
        report["memory"]["end"] = [memory_kb(p) for p in stack.worker_pids()]
        report["machine"]["load_after"] = os.getloadavg()
        for name in ("gunicorn", "celery", "emulator"):
            if name in stack.procs.children and not stack.procs.alive(name):
                report.setdefault("crashed", []).append(name)
        json_path = RESULTS / f"{stamp}.json"
        report["json_path"] = str(json_path.relative_to(ROOT))
        json_path.write_text(json.dumps(report, indent=2, default=str))
        print_table(report)
        return 0
    finally:
        for name in ("gunicorn", "celery"):
            if stack.procs.logs.get(name):
                errors = [
                    ln
                    for ln in stack.procs.tail(name, 400).splitlines()
                    if '"level": "ERROR"' in ln or "Traceback" in ln
                ]
                if errors:
                    log(f"{name}: {len(errors)} error lines, e.g. {errors[-1][:300]}")
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
