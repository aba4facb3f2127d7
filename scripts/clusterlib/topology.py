"""The cluster's constants and small helpers, its prerequisites (Debian packages, the virtualenv), and
its bookkeeping: the state file (``DIR/state.json``) recording every process it started, by pid and
start time, and the ports it took."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from scripts import loopback
from scripts.processes import free_port, group_pids

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python")
PG_BIN_DIRS = ["/usr/lib/postgresql/15/bin", *sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)]
SENTINEL_MASTER = "easypay"
DB_NAME = "easypay"
PACKAGES = {"haproxy": "haproxy", "redis-server": "redis-server", "redis-sentinel": "redis-sentinel"}


def log(message: str) -> None:
    print(f"[cluster {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class ClusterError(RuntimeError):
    pass


# --- small helpers ----------------------------------------------------------------------------------


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_until(predicate, timeout: float, what: str, interval: float = 0.25):
    try:
        return loopback.wait_until(predicate, timeout, interval=interval, what=what)
    except TimeoutError as exc:
        raise ClusterError(str(exc)) from None


def http_status(url: str, timeout: float = 3) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 (http only)
        with opener.open(request, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return 0


def proc_start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat: tells a pid apart from a later process that reused it."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in ("Z", "X"):  # exited, not yet reaped (by us, or by an init that never reaps)
        return None
    return fields[19]


def pg_bin(name: str) -> str:
    for directory in PG_BIN_DIRS:
        candidate = Path(directory) / name
        if candidate.exists():
            return str(candidate)
    raise ClusterError(f"PostgreSQL's {name} was not found in /usr/lib/postgresql/15/bin")


def clean_env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(name, None)
    # Whatever the caller had exported must not leak into the cluster's processes.
    for name in list(env):
        if name.startswith(("DATABASE_", "REDIS_", "CELERY_", "AUTHORIZE_NET_", "GUNICORN_", "DJANGO_")):
            env.pop(name)
    return env


# --- prerequisites ----------------------------------------------------------------------------------


def ensure_packages() -> None:
    missing = [pkg for binary, pkg in PACKAGES.items() if not shutil.which(binary, path=sbin_path())]
    if not missing:
        return
    if os.geteuid() != 0:
        raise ClusterError(
            f"missing Debian packages {', '.join(missing)}: install them (apt-get install) or run as root"
        )
    log(f"installing {', '.join(missing)} (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, capture_output=True, timeout=600)  # noqa: S607
    # Do not let the packages' own services start: the cluster runs its own servers.
    policy = Path("/usr/sbin/policy-rc.d")
    created_policy = False
    if not policy.exists():
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        created_policy = True
    try:
        result = subprocess.run(  # noqa: S603
            ["apt-get", "install", "-y", "-qq", *missing],  # noqa: S607
            env=env,
            check=False,
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        if created_policy:
            policy.unlink(missing_ok=True)
    still = [pkg for binary, pkg in PACKAGES.items() if not shutil.which(binary, path=sbin_path())]
    # redis-sentinel is redis-server in sentinel mode: without the package, redis-server --sentinel does.
    still = [pkg for pkg in still if pkg != "redis-sentinel"]
    if result.returncode != 0 or still:
        raise ClusterError(
            f"apt-get install {' '.join(missing)} failed:\n{result.stdout[-1500:]}{result.stderr[-1500:]}"
        )


def sbin_path() -> str:
    return os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/bin"])


def binary(name: str) -> str:
    found = shutil.which(name, path=sbin_path())
    if not found:
        raise ClusterError(f"{name} not found")
    return found


def ensure_venv() -> None:
    if (ROOT / ".venv" / ".installed").exists() and Path(PYTHON).exists():
        return
    log("creating the virtualenv (make venv)")
    result = subprocess.run(["make", "venv"], cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S607
    if result.returncode != 0:
        raise ClusterError(f"make venv failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")


def group_alive(pgid: int) -> bool:
    return bool(group_pids(pgid))


def venv_path() -> str:
    rest = [p for p in os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin").split(os.pathsep) if p]
    return os.pathsep.join(dict.fromkeys([str(VENV_BIN), *rest, "/usr/local/bin", "/usr/bin", "/bin"]))


def shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


class ClusterState:
    """The state file and the processes it records; the other parts add to it."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.state_path = directory / "state.json"
        self.state: dict = {"processes": {}, "pg_dirs": [], "created": time.time()}
        if self.state_path.exists():
            with contextlib.suppress(ValueError, OSError):
                self.state = json.loads(self.state_path.read_text())
        self.pg_user = "postgres" if os.geteuid() == 0 else None

    # bookkeeping -----------------------------------------------------------------------------------------

    def save(self) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=2))
        tmp.replace(self.state_path)

    def remember(self, name: str, pid: int, kind: str = "group", **extra) -> None:
        self.state["processes"][name] = {"pid": pid, "start": proc_start_time(pid), "kind": kind, **extra}
        self.save()

    def alive(self, name: str) -> bool:
        entry = self.state["processes"].get(name)
        return bool(entry) and proc_start_time(entry["pid"]) == entry["start"] and entry["start"] is not None

    def spawn(self, name: str, argv: list[str], env: dict, user: str | None = None) -> int:
        kwargs: dict = {}
        if user:
            entry = pwd.getpwnam(user)
            kwargs.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
        log_path = self.dir / "logs" / f"{name}.log"
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(  # noqa: S603 (argv built here, no shell)
                argv,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **kwargs,
            )
        self.remember(name, proc.pid)
        log(f"started {name} (pid {proc.pid})")
        return proc.pid

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.dir / "logs" / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def pick_port(self, preferred: int) -> int:
        used = set(self.state.setdefault("ports_used", []))
        port = preferred if (preferred not in used and 1024 < preferred < 65536 and port_free(preferred)) else None
        while port is None:
            candidate = free_port()
            if candidate not in used:
                port = candidate
        self.state["ports_used"].append(port)
        return port
