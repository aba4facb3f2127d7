"""What the benchmark does on the stack: seed it, probe each capability, load it with wrk, fan webhooks
out, profile single requests."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from scripts.loopback import http_request

from .config import LUA, RESULTS, ROOT, Config, Scenario, log
from .profiling import start_profile, summarize_profile
from .stack import BenchStack, memory_kb


def http_call(port: int, method: str, path: str, body=None, headers=None, timeout: float = 30):
    """``(status, parsed body, headers)``; a transport failure raises OSError (the run stops there)."""
    reply = http_request(port, method, path, body, headers, timeout=timeout)
    if reply.status == 0:
        raise OSError(reply.error)
    return reply.status, reply.body, reply.headers


# --- seeding and probes ---------------------------------------------------------------------------


@dataclass
class Seed:
    api_key: str = ""
    merchant_id: str = ""
    ids_file: str = ""
    payment_ids: int = 0
    seed_note: str = ""


def seed(stack: BenchStack, cfg: Config) -> Seed:
    key = stack.create_api_key(
        "bench", name="bench key", per_minute=100_000_000, per_hour=1_000_000_000, per_day=2_000_000_000
    )
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


def probe(stack: BenchStack, seed_info: Seed, run_nonce: str) -> dict[str, str | None]:
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

    if not stack.emulator_up:
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


def run_wrk(stack: BenchStack, cfg: Config, scenario: Scenario, seed_info: Seed, duration: int, nonce: str) -> dict:
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


# --- scenarios ------------------------------------------------------------------------------------


def measure(stack: BenchStack, cfg: Config, scenario: Scenario, seed_info: Seed, stamp: str) -> dict:
    nonce = f"{stamp}-{scenario.name}-{secrets.token_hex(3)}"
    if scenario.latency_ms is not None and stack.emulator_up:
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


def cprofile_requests(stack: BenchStack, seed_info: Seed, stamp: str) -> dict:
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


def webhook_fanout(stack: BenchStack, cfg: Config, seed_info: Seed) -> dict:
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
