"""py-spy on the gunicorn workers during a scenario (BENCH_PROFILE=1), and its summaries."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path

from .config import RESULTS, ROOT, Scenario, log
from .stack import BenchStack


def py_spy() -> str | None:
    local = ROOT / ".venv" / "bin" / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def start_profile(
    stack: BenchStack, scenario: Scenario, stamp: str, duration: int
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
