"""The held-out style load run (``make bench-holdout``): gunicorn configurations compared in one session.

What it runs, on loopback, from the repository root:

* PostgreSQL (a fresh database, dropped at the end), Redis (``HOLDOUT_REDIS_URL``, flushed), the
  Authorize.Net emulator, and gunicorn started the way production starts it: the project's own
  ``gunicorn.conf.py`` with its hooks, the configuration under test chosen only through that file's
  environment overrides (``GUNICORN_WORKER_CLASS``, ``GUNICORN_WORKERS``, ``GUNICORN_THREADS``);
  the app is ``bench.holdout_wsgi`` (the real application plus the two floors);
* per configuration, the scenarios below, each warmed up then measured by wrk; the configurations
  alternate in every round (paired A/B: ``--rounds 3`` gives three A,B,... sequences);
* per scenario: req/s, the ratio to the floor measured in the same round with the same
  configuration, p50/p95, errors (non-2xx + socket errors), and CPU milliseconds per request of each
  process group read from ``/proc/<pid>/stat`` before and after: web (gunicorn master + workers),
  PostgreSQL (the backends of the bench database), the emulator, Redis (the whole server: other users
  of that Redis add to it), wrk.

    python -m bench.holdout                                        # main's model vs the chosen one
    python -m bench.holdout --configs gthread:4x16,gthread:4x4,gevent:2 --rounds 1 --duration 10
    HOLDOUT_REDIS_URL=redis://127.0.0.1:6379/6 HOLDOUT_PORT_BASE=24000 python -m bench.holdout

A configuration is ``gthread:<workers>x<threads>`` or ``gevent:<workers>``, either optionally with
``/<db pool size>`` (a pool of that many PostgreSQL connections per worker process). No Celery worker
runs: the POSTs' on-commit tasks wait in the broker, so every CPU figure belongs to the request path.
Results: the table on stdout and ``bench/results/holdout-<UTC stamp>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import resource
import secrets
import shutil
import statistics
import string
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: bench/ is sys.path[0]
    sys.path.insert(0, str(ROOT))
from scripts.processes import Processes, free_port, group_pids, manage, migrate  # noqa: E402

LUA = ROOT / "bench" / "lua"
RESULTS = ROOT / "bench" / "results"
TICKS = os.sysconf("SC_CLK_TCK")
DEFAULT_CONFIGS = "gthread:4x16,gevent:2"


def log(message: str) -> None:
    print(f"[holdout {datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    script: str
    connections: int
    latency_ms: int = 0
    floor: str | None = None  # the floor this scenario is divided by
    django_floor: str | None = None  # and the bare-Django floor (the definition)


SCENARIOS = [
    Scenario("floor_read", "floor: 1 SELECT, no Django", "floor.lua", 32),
    Scenario("floor_django_read", "floor: 1 SELECT, bare Django", "floor_django.lua", 32),
    Scenario(
        "get_by_id", "GET /payments/{id}", "get_payment.lua", 32, floor="floor_read", django_floor="floor_django_read"
    ),
    Scenario(
        "list", "GET /payments?limit=20", "list_payments.lua", 32, floor="floor_read", django_floor="floor_django_read"
    ),
    Scenario("floor_write", "floor: INSERT + UPDATE, no Django", "floor_write.lua", 32),
    Scenario("floor_django_write", "floor: INSERT + UPDATE, bare Django", "floor_django_write.lua", 32),
    Scenario("floor_django_post", "floor: a POST's I/O, bare Django", "floor_django_post.lua", 32),
    Scenario(
        "post",
        "POST /payments, processor 0 ms",
        "post_payment.lua",
        32,
        floor="floor_django_post",
        django_floor="floor_django_write",
    ),
    Scenario(
        "post_slow", "POST /payments, processor 300 ms, 128 conn", "post_payment.lua", 128, latency_ms=300, floor="post"
    ),
]


@dataclass(frozen=True)
class WorkerModel:
    label: str
    worker_class: str
    workers: int
    threads: int = 1
    db_pool: int | None = None

    @classmethod
    def parse(cls, text: str) -> WorkerModel:
        match = re.fullmatch(r"(gthread):(\d+)x(\d+)(?:/(\d+))?|(gevent):(\d+)(?:/(\d+))?", text.strip())
        if not match:
            raise argparse.ArgumentTypeError(f"bad configuration {text!r}: gthread:4x16[/12] or gevent:2[/16]")
        if match[1]:
            return cls(
                text.strip(), "gthread", int(match[2]), int(match[3]), db_pool=int(match[4]) if match[4] else None
            )
        return cls(text.strip(), "gevent", int(match[6]), db_pool=int(match[7]) if match[7] else None)

    def env(self) -> dict[str, str]:
        out = {"GUNICORN_WORKER_CLASS": self.worker_class, "GUNICORN_WORKERS": str(self.workers)}
        if self.worker_class == "gthread":
            out["GUNICORN_THREADS"] = str(self.threads)
        if self.db_pool:
            out["GUNICORN_DB_POOL_SIZE"] = str(self.db_pool)
        return out


# --- CPU accounting -------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def group_cpu(pids: list[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        value = cpu_seconds(pid)
        if value is not None:
            out[pid] = value
    return out


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU used between the two readings; a process that appeared in between counts from zero."""
    return sum(value - before.get(pid, 0.0) for pid, value in after.items())


# --- the stack ------------------------------------------------------------------------------------


class Stack:
    def __init__(self, state_dir: Path, redis_url: str, pg_admin_url: str, port_base: int | None):
        self.state_dir = state_dir
        self.procs = Processes(state_dir, log=log)
        self.redis_url = redis_url
        self.pg_admin_url = pg_admin_url
        self.db_name = f"easypay_holdout_{datetime.now().strftime('%Y%m%d%H%M%S')}_{os.getpid()}"
        self.database_url = urlparse(pg_admin_url)._replace(path=f"/{self.db_name}").geturl()
        self.emulator_port = port_base if port_base else free_port()
        self.web_port = port_base + 1 if port_base else free_port()
        self.python = str(ROOT / ".venv" / "bin" / "python")
        self.db_created = False
        alphabet = string.ascii_letters + string.digits + "!#%()*+,-./:;<=>?@[]^_{|}~"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "SECRET_KEY": "".join(secrets.choice(alphabet) for _ in range(50)),
            "API_KEY_HASH_KEY": secrets.token_urlsafe(48),
            "JWT_SIGNING_KEY": secrets.token_urlsafe(48),
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": redis_url,
            "CELERY_RESULT_BACKEND": redis_url,
            "AUTHORIZE_NET_ENDPOINT": f"http://127.0.0.1:{self.emulator_port}/xml/v1/request.api",
            "LOG_LEVEL": os.environ.get("HOLDOUT_LOG_LEVEL") or "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        self.merchant_id = ""
        self.api_key = ""
        self.ids_file = str(state_dir / "payment_ids")

    def admin(self):
        import psycopg

        return psycopg.connect(self.pg_admin_url, autocommit=True, connect_timeout=5)

    def setup(self, payments: int) -> None:
        import psycopg

        (self.state_dir / "dbname").write_text(self.db_name)
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        self.db_created = True
        migrate(self.python, self.env)
        from bench.holdout_wsgi import POST_TABLES_DDL, WRITE_TABLE_DDL

        with psycopg.connect(self.database_url, autocommit=True) as conn:
            for ddl in (WRITE_TABLE_DDL, *POST_TABLES_DDL):
                conn.execute(ddl)
        self.flush_redis()
        self.seed(payments)
        argv = [self.python, "-m", "payments.gateways.sandbox", "--port", str(self.emulator_port)]
        proc = self.procs.start("emulator", argv, self.env)
        if not wait_http(self.emulator_port, "/_emulator/health", 30, proc):
            raise RuntimeError(f"emulator did not start:\n{self.procs.tail('emulator')}")

    def seed(self, payments: int) -> None:
        limits = []
        for scope in ("", "merchant-"):
            for period, value in (("minute", "100000000"), ("hour", "1000000000"), ("day", "2000000000")):
                limits += [f"--{scope}rate-limit-per-{period}", value]
        result = manage(
            self.python, self.env, "create_api_key", "--merchant", "bench", "--name", "holdout", *limits, "--json"
        )
        if result.returncode != 0:
            raise RuntimeError(f"create_api_key failed: {result.stderr[-2000:]}")
        key = json.loads(result.stdout.strip().splitlines()[-1])
        self.api_key, self.merchant_id = key["key"], key["merchant_id"]
        argv = [self.python, "-m", "bench.seed", "--merchant-id", self.merchant_id]
        argv += ["--count", str(payments), "--out", self.ids_file]
        seeded = subprocess.run(  # noqa: S603
            argv, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=300, check=False
        )
        if seeded.returncode != 0:
            raise RuntimeError(f"seeding failed:\n{seeded.stderr[-3000:]}")
        log(f"seeded merchant {self.merchant_id}: {seeded.stdout.strip().splitlines()[-1]}")

    def flush_redis(self) -> None:
        import redis

        redis.Redis.from_url(self.redis_url).flushdb()

    def redis_pid(self) -> int | None:
        import redis

        with contextlib.suppress(Exception):
            return int(redis.Redis.from_url(self.redis_url).info("server")["process_id"])
        return None

    def pg_backends(self) -> list[int]:
        with self.admin() as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (self.db_name,)
            ).fetchall()
        return [row[0] for row in rows]

    def emulator_latency(self, latency_ms: int) -> None:
        status, body = http_call(self.emulator_port, "POST", "/_emulator/config", {"latency_ms": latency_ms})
        if status != 200:
            raise RuntimeError(f"emulator config failed: {status} {body[:300]!r}")

    def start_web(self, model: WorkerModel) -> None:
        env = {**self.env, **model.env(), "GUNICORN_BIND": f"127.0.0.1:{self.web_port}"}
        argv = [str(ROOT / ".venv" / "bin" / "gunicorn"), "bench.holdout_wsgi:application", "--log-level", "warning"]
        proc = self.procs.start("web", argv, env)
        if not wait_http(self.web_port, "/health/live", 60, proc):
            raise RuntimeError(f"gunicorn ({model.label}) did not start:\n{self.procs.tail('web', 40)}")
        deadline = time.monotonic() + 30
        while len(group_pids(proc.pid)) < model.workers + 1 and time.monotonic() < deadline:
            time.sleep(0.2)

    def stop_web(self) -> None:
        self.procs.stop("web")

    def snapshot(self) -> dict[str, dict[int, float]]:
        web = self.procs.children["web"].pid
        emulator = self.procs.children["emulator"].pid
        redis_pid = self.redis_pid()
        return {
            "web": group_cpu(group_pids(web)),
            "postgresql": group_cpu(self.pg_backends()),
            "emulator": group_cpu(group_pids(emulator)),
            "redis": group_cpu([redis_pid] if redis_pid else []),
        }

    def stop(self) -> None:
        self.procs.stop_all()
        with contextlib.suppress(Exception):
            self.flush_redis()
        if self.db_created and os.environ.get("HOLDOUT_KEEP_DB") != "1":
            try:
                with self.admin() as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            except Exception as exc:
                log(f"could not drop {self.db_name}: {exc}")


def http_call(port: int, method: str, path: str, body=None, headers=None, timeout: float = 30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        hdrs = {"Accept": "application/json", "Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body=payload, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_http(port: int, path: str, timeout: float, proc: subprocess.Popen) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with contextlib.suppress(OSError):
            if http_call(port, "GET", path, timeout=2)[0] == 200:
                return True
        time.sleep(0.2)
    return False


# --- one measurement ------------------------------------------------------------------------------


def wrk(stack: Stack, scenario: Scenario, seconds: int, nonce: str) -> tuple[dict, float]:
    """wrk's JSON summary (bench/lua/common.lua) and wrk's own CPU seconds."""
    env = {
        **os.environ,
        "BENCH_LUA_DIR": str(LUA),
        "BENCH_API_KEY": stack.api_key,
        "BENCH_NONCE": nonce,
        "BENCH_IDS_FILE": stack.ids_file,
        "BENCH_MERCHANT_ID": stack.merchant_id,
    }
    argv = [shutil.which("wrk") or "wrk", "-t", "2", "-c", str(scenario.connections), "-d", f"{seconds}s"]
    argv += ["--timeout", "10s", "-s", str(LUA / scenario.script), f"http://127.0.0.1:{stack.web_port}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False)  # noqa: S603
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads(line.removeprefix("BENCH_JSON ")), used


def measure(stack: Stack, scenario: Scenario, seconds: int, warmup: int, nonce: str) -> dict:
    stack.emulator_latency(scenario.latency_ms)
    if warmup:
        wrk(stack, scenario, warmup, f"{nonce}w")
    before = stack.snapshot()
    started = time.monotonic()
    raw, wrk_cpu = wrk(stack, scenario, seconds, nonce)
    wall = time.monotonic() - started
    after = stack.snapshot()
    requests = raw["requests"] or 1
    cpu = {group: cpu_delta(before[group], after[group]) for group in before}
    cpu_ms = {group: round(1000 * value / requests, 3) for group, value in cpu.items()}
    cpu_ms["all"] = round(sum(cpu_ms.values()), 3)
    cpu_ms["wrk"] = round(1000 * wrk_cpu / requests, 3)
    errors = raw["non2xx"] + sum(v for k, v in raw["errors"].items() if k != "status")
    lat = raw["latency_us"]
    return {
        "requests": raw["requests"],
        "rps": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "p50_ms": round(lat["p50"] / 1000, 2),
        "p95_ms": round(lat["p95"] / 1000, 2),
        "p99_ms": round(lat["p99"] / 1000, 2),
        "errors": errors,
        "statuses": raw["statuses"],
        "cpu_ms_per_request": cpu_ms,
        "machine_cpu_share": round(sum(cpu.values()) / wall / (os.cpu_count() or 1), 3),
    }


def probe(stack: Stack) -> None:
    """Every path answers once before anything is measured (a broken one stops the run)."""
    first_id = Path(stack.ids_file).read_text().split()[0]
    headers = {"X-API-Key": stack.api_key}
    checks = [
        ("GET", f"/__floor?merchant={stack.merchant_id}", None, {}, 200),
        ("POST", f"/__floor_write?merchant={stack.merchant_id}", None, {}, 201),
        ("GET", f"/__floor_django?merchant={stack.merchant_id}", None, {}, 200),
        ("POST", f"/__floor_django_write?merchant={stack.merchant_id}", None, {}, 201),
        ("GET", f"/api/v1/payments/{first_id}", None, headers, 200),
        ("GET", "/api/v1/payments?limit=20", None, headers, 200),
        (
            "POST",
            "/api/v1/payments",
            {"amount": "1.00", "currency": "USD", "card_token": "tok_visa", "customer_id": "cust_probe"},
            {**headers, "Idempotency-Key": f"probe-{secrets.token_hex(8)}"},
            201,
        ),
    ]
    for method, path, body, hdrs, expected in checks:
        status, raw = http_call(stack.web_port, method, path, body, hdrs)
        if status != expected:
            raise RuntimeError(f"{method} {path}: {status} {raw[:300]!r}")


def run_model(stack: Stack, model: WorkerModel, scenarios: list[Scenario], args, round_no: int) -> dict:
    stack.start_web(model)
    try:
        probe(stack)
        out = {}
        for scenario in scenarios:
            nonce = f"{round_no}-{model.label}-{scenario.name}-{secrets.token_hex(4)}"
            out[scenario.name] = measure(stack, scenario, args.duration, args.warmup, nonce)
            result = out[scenario.name]
            log(
                f"  {model.label:<14} {scenario.name:<12} {result['rps']:>8} req/s  p95 {result['p95_ms']:>8} ms  "
                f"err {result['errors']}  cpu/req {result['cpu_ms_per_request']}"
            )
        for scenario in scenarios:
            if scenario.floor and scenario.floor in out:
                out[scenario.name]["ratio"] = round(out[scenario.name]["rps"] / out[scenario.floor]["rps"], 3)
            if scenario.django_floor and scenario.django_floor in out:
                django_rps = out[scenario.django_floor]["rps"]
                out[scenario.name]["ratio_django"] = round(out[scenario.name]["rps"] / django_rps, 3)
        return out
    finally:
        stack.stop_web()


# --- report ---------------------------------------------------------------------------------------


def spread(values: list[float], digits: int = 1) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:.{digits}f}"
    return f"{med:.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def table(models: list[WorkerModel], scenarios: list[Scenario], rounds: list[dict]) -> str:
    lines = [
        "| scenario | configuration | req/s | ratio | p50 ms | p95 ms | errors "
        "| CPU ms/req: all = web + pg + emulator + redis | ratio to bare Django |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for scenario in scenarios:
        for model in models:
            runs = [r[model.label][scenario.name] for r in rounds if scenario.name in r.get(model.label, {})]
            if not runs:
                continue

            def col(key, digits=1, runs=runs):
                return spread([run[key] for run in runs if key in run], digits)

            def cpu(group, runs=runs):
                return statistics.median(run["cpu_ms_per_request"][group] for run in runs)

            cpu_text = (
                f"{spread([run['cpu_ms_per_request']['all'] for run in runs], 2)} = {cpu('web'):.2f} + "
                f"{cpu('postgresql'):.2f} + {cpu('emulator'):.2f} + {cpu('redis'):.2f}"
            )
            lines.append(
                f"| {scenario.title} | {model.label} | {col('rps')} | {col('ratio', 3)} | {col('p50_ms')} | "
                f"{col('p95_ms')} | {sum(run['errors'] for run in runs)} | {cpu_text} | {col('ratio_django', 3)} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=os.environ.get("HOLDOUT_CONFIGS") or DEFAULT_CONFIGS)
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("HOLDOUT_ROUNDS") or 3))
    parser.add_argument("--duration", type=int, default=int(os.environ.get("HOLDOUT_DURATION") or 15))
    parser.add_argument("--warmup", type=int, default=int(os.environ.get("HOLDOUT_WARMUP") or 3))
    parser.add_argument("--scenarios", default=os.environ.get("HOLDOUT_SCENARIOS") or "all")
    parser.add_argument("--payments", type=int, default=1000)
    args = parser.parse_args(argv)

    models = [WorkerModel.parse(text) for text in args.configs.split(",") if text.strip()]
    wanted = None if args.scenarios == "all" else set(args.scenarios.split(","))
    scenarios = [s for s in SCENARIOS if wanted is None or s.name in wanted]
    if shutil.which("wrk") is None:
        log("wrk is missing: apt-get install wrk")
        return 2
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    state_dir = Path(tempfile.mkdtemp(prefix="easypay-holdout."))
    stack = Stack(
        state_dir,
        redis_url=os.environ.get("HOLDOUT_REDIS_URL") or "redis://127.0.0.1:6379/10",
        pg_admin_url=os.environ.get("HOLDOUT_PG_URL") or "postgres://postgres@127.0.0.1:5432/postgres",
        port_base=int(os.environ["HOLDOUT_PORT_BASE"]) if os.environ.get("HOLDOUT_PORT_BASE") else None,
    )
    rounds: list[dict] = []
    report = {"stamp": stamp, "configs": [m.label for m in models], "args": vars(args), "rounds": rounds}
    try:
        stack.setup(args.payments)
        for round_no in range(1, args.rounds + 1):
            log(f"round {round_no}/{args.rounds}, load average {os.getloadavg()[0]:.2f}")
            rounds.append({m.label: run_model(stack, m, scenarios, args, round_no) for m in models})
    finally:
        stack.stop()
        if os.environ.get("HOLDOUT_KEEP_STATE") == "1":  # the servers' logs, e.g. a 500's traceback
            log(f"logs kept in {state_dir}")
        else:
            shutil.rmtree(state_dir, ignore_errors=True)
        out = RESULTS / f"holdout-{stamp}.json"
        out.write_text(json.dumps(report, indent=2))
        log(f"results in {out.relative_to(ROOT)}")
    print(table(models, scenarios, rounds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
