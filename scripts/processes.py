"""The processes of a local stack (``make bench``, ``make faults``, ``make soak``), started and stopped
the same way: each child in its own session, stopped by its process-group id (its own pid), every pid
appended to ``<state_dir>/pids`` so that a wrapper (``bench/run.sh``) can clean up even when the Python
side dies hard; output to ``<state_dir>/<name>.log``. The Celery worker and beat command lines are
built here for those stacks and for ``scripts/cluster.py``.

Standard library only: the bench imports it before the project is set up.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def make_log(prefix: str) -> Callable[[str], None]:
    """``log(message)`` printing ``[prefix HH:MM:SS] message`` to stderr."""

    def log(message: str) -> None:
        print(f"[{prefix} {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    return log


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free loopback port: any the system gives, or one of ``EASYPAY_PORT_RANGE=LOW-HIGH`` when set
    (machines where each user has a range), never the same twice in this process."""
    span = os.environ.get("EASYPAY_PORT_RANGE", "").strip()
    if not span:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]
    low, _, high = span.partition("-")
    candidates = [p for p in range(int(low), int(high) + 1) if p not in _HANDED_OUT]
    random.shuffle(candidates)
    for port in candidates:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError(f"no free port left in EASYPAY_PORT_RANGE={span}")


def port_open(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _pids_where(field: int, value: int) -> list[int]:
    """Pids whose /proc/<pid>/stat field (after the command name) equals ``value``."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[field]) == value:
            out.append(int(entry.name))
    return sorted(out)


def children_of(pid: int) -> list[int]:
    return _pids_where(1, pid)  # ppid


def group_pids(pgid: int) -> list[int]:
    return _pids_where(2, pgid)  # process group


def manage(python: str, env: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python manage.py <args>`` in the repository with ``env``, output captured."""
    return subprocess.run(  # noqa: S603 (argv built here, no shell)
        [python, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def migrate(python: str, env: dict) -> None:
    result = manage(python, env, "migrate", "--noinput")
    if result.returncode != 0:
        raise RuntimeError(f"migrate failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")


def celery_worker_argv(
    celery: str, *, hostname: str, loglevel: str = "INFO", pool: str = "prefork", concurrency: int = 2
) -> list[str]:
    """``celery -A config worker`` as every local stack runs it (the fault tests, the soak, the bench,
    the cluster): no gossip, no mingle (workers come and go in tests), a hostname of the caller's."""
    return [
        celery,
        "-A",
        "config",
        "worker",
        "--loglevel",
        loglevel,
        "--pool",
        pool,
        "--concurrency",
        str(concurrency),
        "--without-gossip",
        "--without-mingle",
        "--hostname",
        hostname,
    ]


def celery_beat_argv(
    celery: str, *, pidfile: str, loglevel: str = "INFO", max_interval: int | None = None
) -> list[str]:
    """``celery -A config beat`` with its pid file (and, when given, ``--max-interval`` seconds)."""
    argv = [celery, "-A", "config", "beat", "--loglevel", loglevel, "--pidfile", pidfile]
    if max_interval is not None:
        argv += ["--max-interval", str(max_interval)]
    return argv


class Processes:
    """Children started in their own sessions, stopped by process-group id (their own pid)."""

    def __init__(self, state_dir: Path, log: Callable[[str], None] = print) -> None:
        self.state_dir = state_dir
        self.log = log
        self.children: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}

    def start(self, name: str, argv: list[str], env: dict, user: str | None = None) -> subprocess.Popen:
        log_path = self.state_dir / f"{name}.log"
        self.logs[name] = log_path
        kwargs: dict[str, Any] = {}
        if user is not None:
            entry = pwd.getpwnam(user)
            kwargs.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(  # noqa: S603 (argv built by the caller, no shell)
                argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
            )
        self.children[name] = proc
        with open(self.state_dir / "pids", "a") as fh:
            fh.write(f"{proc.pid}\n")
        self.log(f"started {name} (pid {proc.pid})")
        return proc

    def pid(self, name: str) -> int | None:
        proc = self.children.get(name)
        return proc.pid if proc is not None else None

    def alive(self, name: str) -> bool:
        proc = self.children.get(name)
        return proc is not None and proc.poll() is None

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.logs.get(name)
        if not path or not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal the whole group of ``name`` (e.g. SIGKILL: a crash) and forget it."""
        proc = self.children.pop(name, None)
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)

    def stop(self, name: str, grace: float = 10) -> None:
        proc = self.children.pop(name, None)
        if proc is not None:
            self._stop(name, proc, grace)

    def stop_all(self, grace: float = 10) -> None:
        for name, proc in reversed(list(self.children.items())):
            self._stop(name, proc, grace)
        self.children.clear()

    def _stop(self, name: str, proc: subprocess.Popen, grace: float) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if proc.poll() is None:
            self.log(f"{name} (pid {proc.pid}) ignored SIGTERM: SIGKILL")
        # The group may still hold children (gunicorn workers, celery pool) after its leader left.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
