"""Cluster mode of the benchmark: the same short load through HAProxy with 1 and with 3 web instances.

    python bench/cluster_bench.py [--web 1,3] [--seconds 15] [--threads 8]

For each size it brings a cluster up (scripts/cluster.py, free ports), runs GET /payments/{id} and then
POST /payments for ``--seconds`` each, and reports requests/s, CPU seconds per request (every process of
the cluster: web, balancer, PostgreSQL, Redis, emulator; from /proc), WAL bytes per payment and the
replicas' replay lag sampled during the POST phase. Same cores either way: it measures what the balancer
and replica routing cost, not a speed-up. Prints one JSON object per size.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.cluster.harness import Cluster  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pgids: set[int]) -> float:
    """utime + stime of every live process whose group or pid is one of ``pgids`` (PostgreSQL's backends
    are counted through their postmaster's children)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ppid, pgrp = int(fields[1]), int(fields[2])
        if pgrp in pgids or ppid in pgids or int(entry.name) in pgids:
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


def _load(cluster: Cluster, seconds: float, threads: int, make) -> int:
    done = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def run():
        while time.monotonic() < deadline:
            reply = make()
            if reply.status in (200, 201):
                with lock:
                    done[0] += 1

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return done[0]


def measure(web: int, seconds: float, threads: int) -> dict:
    cluster = Cluster(web=web, replicas=2, workers=1)
    cluster.up()
    try:
        pgids = set(cluster.pids.values())
        body = {"amount": "5.00", "currency": "USD", "card_token": "tok_visa", "customer_id": "bench"}
        first = cluster.api("POST", "/api/v1/payments", body, {"Idempotency-Key": uuid.uuid4().hex})
        pay_id = first.data["id"]
        out: dict = {"web_instances": web}
        cpu0 = _cpu_seconds(pgids)
        gets = _load(cluster, seconds, threads, lambda: cluster.api("GET", f"/api/v1/payments/{pay_id}"))
        cpu1 = _cpu_seconds(pgids)
        out["get_per_second"] = round(gets / seconds, 1)
        out["cpu_ms_per_get"] = round((cpu1 - cpu0) / max(gets, 1) * 1000, 2)
        lsn0 = cluster.sql("SELECT pg_current_wal_lsn()")[0][0]
        lags: list[float] = []
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                rows = cluster.sql("SELECT COALESCE(EXTRACT(EPOCH FROM replay_lag), 0) FROM pg_stat_replication")
                lags.extend(float(r[0]) for r in rows)
                time.sleep(0.5)

        sampler = threading.Thread(target=sample)
        sampler.start()
        cpu2 = _cpu_seconds(pgids)
        posts = _load(
            cluster,
            seconds,
            threads,
            lambda: cluster.api("POST", "/api/v1/payments", body, {"Idempotency-Key": uuid.uuid4().hex}),
        )
        cpu3 = _cpu_seconds(pgids)
        stop.set()
        sampler.join()
        wal = cluster.sql("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)", (str(lsn0),))[0][0]
        out["post_per_second"] = round(posts / seconds, 1)
        out["cpu_ms_per_post"] = round((cpu3 - cpu2) / max(posts, 1) * 1000, 2)
        out["wal_bytes_per_payment"] = int(float(wal) / max(posts, 1))
        out["replay_lag_ms_max"] = round(max(lags, default=0) * 1000, 1)
        out["replay_lag_ms_mean"] = round(sum(lags) / max(len(lags), 1) * 1000, 1)
        return out
    finally:
        cluster.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--web", default="1,3")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    for web in (int(w) for w in args.web.split(",")):
        print(json.dumps(measure(web, args.seconds, args.threads)), flush=True)


if __name__ == "__main__":
    main()
