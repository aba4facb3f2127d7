"""EasyPay load benchmark: start the production-like stack on loopback, load it with wrk, report.

Entry point: ``bash bench/run.sh`` (``make bench``); see bench/README.md. This file is the command line;
the work is in ``bench/runner/`` (config, stack, scenarios, profiling, report):

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
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: bench/ is sys.path[0]
    sys.path.insert(0, str(ROOT))
from bench.runner.config import RESULTS, SCENARIOS, Config, env_int, log  # noqa: E402
from bench.runner.report import git_info, print_table  # noqa: E402
from bench.runner.scenarios import cprofile_requests, measure, probe, seed, webhook_fanout  # noqa: E402
from bench.runner.stack import BenchStack, memory_kb  # noqa: E402


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
    stack = BenchStack(cfg, state_dir)
    report["stack"] = {
        "database": stack.db_name,
        "web_port": stack.web_port,
        "emulator_port": stack.emulator_port,
        "gunicorn": f"bench.floor_wsgi:application gthread --workers {cfg.workers} --threads {cfg.threads}",
        "celery": f"--pool {cfg.celery_pool} --concurrency {cfg.celery_concurrency}",
    }
    try:
        stack.start()  # Redis flushed, database created and migrated, emulator, receiver, Celery, gunicorn
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
