"""The benchmark's table on stdout (the JSON in bench/results/ holds everything)."""

from __future__ import annotations

import subprocess

from .config import ERROR_RATE_MAX, ROOT, SCENARIOS


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
