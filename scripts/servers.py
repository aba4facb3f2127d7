"""Private servers for a local stack: a throwaway PostgreSQL cluster and a throwaway ``redis-server``,
each on a free port, which a fault test may stop and start again."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from scripts.loopback import wait_until
from scripts.processes import Processes, free_port, make_log, port_open

log = make_log("stack")


def pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"{name} not found under /usr/lib/postgresql/*/bin")
    return found[-1]


class PrivatePostgres:
    """A throwaway PostgreSQL cluster in a temp dir on a free port (run as ``postgres`` when root)."""

    def __init__(self) -> None:
        # Its own directory (not under the 0700 state dir) so the postgres user can reach it.
        self.dir = Path(tempfile.mkdtemp(prefix="easypay_faults_pg_"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        self.url_admin = f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
        kwargs: dict[str, Any] = {}
        if self.user:
            entry = pwd.getpwnam(self.user)
            kwargs.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
        return subprocess.run(  # noqa: S603 (argv built here, no shell)
            list(argv), capture_output=True, text=True, timeout=timeout, check=False, cwd="/", **kwargs
        )

    def init(self) -> None:
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        result = self._run(
            pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed: {result.stdout[-1500:]} {result.stderr[-1500:]}")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.dir}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 100\n"
                "shared_buffers = 32MB\n"
            )

    def start(self) -> None:
        result = self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "server.log"), "-w", "start")
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {result.stdout[-1500:]} {result.stderr[-1500:]}")
        log(f"private PostgreSQL up on 127.0.0.1:{self.port} (postmaster pid {self.pid()})")

    def stop(self, mode: str = "fast") -> None:
        result = self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")
        if result.returncode != 0 and self.running():
            raise RuntimeError(f"pg_ctl stop failed: {result.stdout[-800:]} {result.stderr[-800:]}")
        log(f"private PostgreSQL stopped ({mode})")

    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def running(self) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def destroy(self) -> None:
        if self.running():
            with contextlib.suppress(Exception):
                self.stop("immediate")
        pid = self.pid()
        if pid and self.running():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    """A throwaway ``redis-server`` (append-only file, so a clean stop/start keeps queued messages)."""

    def __init__(self, base: Path, procs: Processes) -> None:
        self.dir = base / "redis"
        self.port = free_port()
        self.procs = procs

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        argv = [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--dir",
            str(self.dir),
            "--protected-mode",
            "no",
        ]
        self.procs.start("redis", argv, dict(os.environ))
        wait_until(lambda: port_open(self.port), 15, what="private redis-server")

    def stop(self) -> None:
        self.procs.stop("redis")
        wait_until(lambda: not port_open(self.port), 10, what="redis-server to stop")
