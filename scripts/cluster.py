#!/usr/bin/env python3
"""EasyPay as a cluster on one machine, on loopback, from real components.

    python scripts/cluster.py up --dir DIR [--port 8000] [--web 3] [--replicas 2] [--workers 2]
    python scripts/cluster.py down --dir DIR

``up`` starts, each in its own session and with its data under ``DIR``:

* PostgreSQL 15: a primary (``initdb``) and ``--replicas`` streaming replicas (``pg_basebackup -R``),
  run as the ``postgres`` system user when we are root (``initdb`` refuses root);
* Redis: a primary, one replica and three Sentinels (master name ``easypay``); the cache, the rate
  limiter, idempotency claims, leases and the Celery broker all find the master through the Sentinels;
* the Authorize.Net emulator; ``--web`` gunicorn instances behind HAProxy on ``--port`` (health checks
  on ``/health/ready``); ``--workers`` Celery workers; exactly one Celery beat (and the beat scheduler
  takes a PostgreSQL advisory lock, so a second one started by mistake schedules nothing).

It creates the database and migrates it, creates nothing else, waits until ``GET /health/ready`` through
the balancer answers 200, writes ``DIR/env`` (``. DIR/env`` and ``python manage.py ...`` talks to the
cluster) and ``DIR/pids.json``, and exits 0 with everything running. Missing Debian packages (haproxy,
redis-server, redis-sentinel) are installed with apt-get when we are root. Every other port is taken from
``--base-port`` (default: ``--port`` + 1) upwards, or any free port when that one is taken.

``down`` stops every process ``up`` started, by pid (checking the pid still names the same process), and
removes ``DIR``'s data.

Standard library only: it may run before the virtualenv exists (it creates it with ``make venv``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The stack helpers the bench and the fault tests use (standard library only, like this script).
from scripts.processes import free_port, port_open  # noqa: E402

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
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}")


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
    missing = [pkg for binary, pkg in PACKAGES.items() if not shutil.which(binary, path=_sbin_path())]
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
    still = [pkg for binary, pkg in PACKAGES.items() if not shutil.which(binary, path=_sbin_path())]
    # redis-sentinel is redis-server in sentinel mode: without the package, redis-server --sentinel does.
    still = [pkg for pkg in still if pkg != "redis-sentinel"]
    if result.returncode != 0 or still:
        raise ClusterError(
            f"apt-get install {' '.join(missing)} failed:\n{result.stdout[-1500:]}{result.stderr[-1500:]}"
        )


def _sbin_path() -> str:
    return os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/bin"])


def binary(name: str) -> str:
    found = shutil.which(name, path=_sbin_path())
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


# --- the cluster ----------------------------------------------------------------------------------------


class Cluster:
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

    # PostgreSQL ---------------------------------------------------------------------------------------

    def _as_pg(self, argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
        kwargs: dict = {}
        if self.pg_user:
            entry = pwd.getpwnam(self.pg_user)
            kwargs.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
        return subprocess.run(  # noqa: S603
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd="/",
            stdin=subprocess.DEVNULL,
            **kwargs,
        )

    def _pg_root(self) -> Path:
        """``DIR/pg``, or a directory of its own when the postgres user cannot reach ``DIR``."""
        inside = self.dir / "pg"
        inside.mkdir(exist_ok=True)
        if not self.pg_user:
            return inside
        entry = pwd.getpwnam(self.pg_user)
        os.chown(inside, entry.pw_uid, entry.pw_gid)
        probe = self._as_pg(["/bin/sh", "-c", f'test -w "{inside}" && test -x "{inside}"'])
        if probe.returncode == 0:
            return inside
        outside = Path(tempfile.mkdtemp(prefix="easypay-cluster-pg-"))
        os.chown(outside, entry.pw_uid, entry.pw_gid)
        self.state["pg_dirs"].append(str(outside))
        self.save()
        (inside / "WHERE").write_text(f"{outside}\n")
        return outside

    def _pg_conf(self, data: Path, port: int, sockets: Path, replica: bool) -> None:
        lines = [
            "",
            "# easypay cluster",
            f"port = {port}",
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{sockets}'",
            "max_connections = 300",
            "shared_buffers = 64MB",
            "fsync = off",
            "synchronous_commit = off",
            "full_page_writes = on",
            "wal_level = replica",
            "max_wal_senders = 10",
            "wal_keep_size = 512MB",
            "hot_standby = on",
            "hot_standby_feedback = on",
            "max_standby_streaming_delay = 30s",
            "logging_collector = off",
        ]
        with open(data / "postgresql.auto.conf" if replica else data / "postgresql.conf", "a") as conf:
            conf.write("\n".join(lines) + "\n")

    def _pg_start(self, name: str, data: Path) -> int:
        result = self._as_pg(
            [pg_bin("pg_ctl"), "-D", str(data), "-l", str(data.parent / f"{name}.log"), "-w", "-t", "120", "start"]
        )
        if result.returncode != 0:
            log_text = (
                (data.parent / f"{name}.log").read_text(errors="replace")[-2000:]
                if (data.parent / f"{name}.log").exists()
                else ""
            )
            raise ClusterError(
                f"pg_ctl start ({name}) failed: {result.stdout[-1000:]} {result.stderr[-1000:]} {log_text}"
            )
        pid = int((data / "postmaster.pid").read_text().splitlines()[0])
        self.remember(name, pid, kind="postgres", data=str(data))
        log(f"started {name} (postmaster pid {pid})")
        return pid

    def start_postgres(self, base: int, replicas: int) -> tuple[str, list[str]]:
        root = self._pg_root()
        self.state["pg_root"] = str(root)
        primary_port = self.pick_port(base)
        primary = root / "primary"
        result = self._as_pg(
            [pg_bin("initdb"), "-D", str(primary), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]
        )
        if result.returncode != 0:
            raise ClusterError(f"initdb failed: {result.stdout[-1500:]} {result.stderr[-1500:]}")
        self._pg_conf(primary, primary_port, root, replica=False)
        with open(primary / "pg_hba.conf", "a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 trust\n")
        self._pg_start("pg-primary", primary)
        self.state["pg"] = {"primary_port": primary_port, "replica_ports": []}
        create = self._as_pg(
            [
                pg_bin("psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(primary_port),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-qAtc",
                f"CREATE DATABASE {DB_NAME}",
            ]
        )
        if create.returncode != 0:
            raise ClusterError(f"CREATE DATABASE failed: {create.stderr[-1000:]}")
        replica_urls = []
        for index in range(1, replicas + 1):
            port = self.pick_port(base + index)
            data = root / f"replica{index}"
            backup = self._as_pg(
                [
                    pg_bin("pg_basebackup"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(primary_port),
                    "-U",
                    "postgres",
                    "-D",
                    str(data),
                    "-R",
                    "-X",
                    "stream",
                    "-c",
                    "fast",
                ],
                timeout=600,
            )
            if backup.returncode != 0:
                raise ClusterError(f"pg_basebackup failed: {backup.stdout[-1000:]} {backup.stderr[-1000:]}")
            self._pg_conf(data, port, root, replica=True)
            self._pg_start(f"pg-replica{index}", data)
            self.state["pg"]["replica_ports"].append(port)
            replica_urls.append(f"postgres://postgres@127.0.0.1:{port}/{DB_NAME}")
        self.save()
        return f"postgres://postgres@127.0.0.1:{primary_port}/{DB_NAME}", replica_urls

    # Redis -----------------------------------------------------------------------------------------------

    def start_redis(self, base: int) -> tuple[str, list[tuple[str, int]]]:
        env = clean_env()
        server = binary("redis-server")
        ports = {"redis-primary": self.pick_port(base + 10), "redis-replica": self.pick_port(base + 11)}
        for name, port in ports.items():
            data = self.dir / name
            data.mkdir(exist_ok=True)
            argv = [server, "--port", str(port), "--bind", "127.0.0.1", "--protected-mode", "no", "--dir", str(data)]
            argv += [
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--maxmemory-policy",
                "noeviction",
            ]
            if name == "redis-replica":
                argv += ["--replicaof", "127.0.0.1", str(ports["redis-primary"])]
            self.spawn(name, argv, env)
            wait_until(lambda p=port: port_open(p), 20, f"{name} on port {port}")
        sentinels = []
        sentinel_bin = shutil.which("redis-sentinel", path=_sbin_path())
        for index in range(1, 4):
            port = self.pick_port(base + 11 + index)
            data = self.dir / f"sentinel{index}"
            data.mkdir(exist_ok=True)
            conf = data / "sentinel.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndaemonize no\ndir {data}\n"
                f"sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {ports['redis-primary']} 2\n"
                f"sentinel down-after-milliseconds {SENTINEL_MASTER} 2000\n"
                f"sentinel failover-timeout {SENTINEL_MASTER} 10000\n"
                f"sentinel parallel-syncs {SENTINEL_MASTER} 1\n"
            )
            argv = [sentinel_bin, str(conf)] if sentinel_bin else [server, str(conf), "--sentinel"]
            self.spawn(f"sentinel{index}", argv, env)
            sentinels.append(("127.0.0.1", port))
        for _, port in sentinels:
            wait_until(lambda p=port: port_open(p), 20, f"sentinel on port {port}")
        self.state["redis"] = {**ports, "sentinels": [p for _, p in sentinels]}
        self.save()
        return f"redis://127.0.0.1:{ports['redis-primary']}/0", sentinels

    # application ----------------------------------------------------------------------------------------

    def app_env(self, settings: dict[str, str]) -> dict[str, str]:
        env = clean_env()
        env.update(settings)
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = str(ROOT)
        env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
        return env

    def manage(self, env: dict, *args: str, timeout: float = 600) -> None:
        result = subprocess.run(  # noqa: S603
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise ClusterError(f"manage.py {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")

    def start_haproxy(self, port: int, web_ports: list[int]) -> None:
        servers = "\n".join(f"    server web{i} 127.0.0.1:{p} check" for i, p in enumerate(web_ports, start=1))
        # When every instance says "not ready" at once, the cause is shared (Redis failing over): rather
        # than answering 503 itself, the balancer then sends to all of them (backups, no checks).
        # A server marked down keeps its in-flight requests (no `on-marked-down shutdown-sessions`): during
        # a Redis failover every instance is briefly not ready, and cutting their sessions answered 502s.
        backups = "\n".join(
            f"    server web{i}-fallback 127.0.0.1:{p} backup" for i, p in enumerate(web_ports, start=1)
        )
        config = f"""global
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    timeout http-keep-alive 10s
    retries 3
    option redispatch
    option allbackups

frontend easypay
    bind 127.0.0.1:{port}
    default_backend web

backend web
    balance roundrobin
    option httpchk
    http-check send meth GET uri /health/ready ver HTTP/1.1 hdr Host 127.0.0.1
    http-check expect status 200
    default-server inter 1s fall 2 rise 2
{servers}
{backups}
"""
        conf = self.dir / "haproxy.cfg"
        conf.write_text(config)
        check = subprocess.run([binary("haproxy"), "-c", "-f", str(conf)], capture_output=True, text=True, check=False)  # noqa: S603
        if check.returncode != 0:
            raise ClusterError(f"haproxy configuration refused: {check.stdout}{check.stderr}")
        self.spawn("lb", [binary("haproxy"), "-f", str(conf), "-db"], clean_env())
        wait_until(lambda: port_open(port), 20, f"HAProxy on port {port}")

    def web_argv(self, port: int) -> list[str]:
        return [
            str(VENV_BIN / "gunicorn"),
            "config.wsgi:application",
            "--config",
            str(ROOT / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{port}",
            "--graceful-timeout",
            "20",
            # Several instances on one machine: gunicorn's control socket is one fixed path per user.
            "--no-control-socket",
        ]

    def worker_argv(self, index: int) -> list[str]:
        return [
            str(VENV_BIN / "celery"),
            "-A",
            "config",
            "worker",
            "--loglevel",
            "INFO",
            "--pool",
            "prefork",
            "--concurrency",
            "2",
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            f"worker{index}-{os.getpid()}@%h",
        ]

    def beat_argv(self, name: str = "beat") -> list[str]:
        return [
            str(VENV_BIN / "celery"),
            "-A",
            "config",
            "beat",
            "--loglevel",
            "INFO",
            "--pidfile",
            str(self.dir / f"{name}.pid"),
            "--max-interval",
            "5",
        ]

    # up / down --------------------------------------------------------------------------------------------

    def up(self, port: int, base: int, web: int, replicas: int, workers: int) -> None:
        started = time.monotonic()
        (self.dir / "logs").mkdir(parents=True, exist_ok=True)
        self.state["ports_used"] = [port]
        self.save()
        if not port_free(port):
            raise ClusterError(f"port {port} (the load balancer's) is already in use")
        ensure_packages()
        ensure_venv()
        database_url, replica_urls = self.start_postgres(base, replicas)
        redis_url, sentinels = self.start_redis(base)
        emulator_port = self.pick_port(base + 15)
        web_ports = [self.pick_port(base + 20 + i) for i in range(web)]
        alphabet = string.ascii_letters + string.digits
        signature_key = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(128))
        lb_url = f"http://127.0.0.1:{port}"
        settings = {
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "DEBUG": "false",
            "SECRET_KEY": "".join(secrets.choice(alphabet) for _ in range(50)),
            "ALLOWED_HOSTS": "127.0.0.1,localhost,[::1]",
            "EASYPAY_BASE_URL": lb_url,
            "DATABASE_URL": database_url,
            "DATABASE_REPLICA_URLS": ",".join(replica_urls),
            "REDIS_URL": redis_url,
            "REDIS_SENTINELS": ",".join(f"{h}:{p}" for h, p in sentinels),
            "REDIS_SENTINEL_MASTER": SENTINEL_MASTER,
            "AUTHORIZE_NET_ENDPOINT": f"http://127.0.0.1:{emulator_port}/xml/v1/request.api",
            "AUTHORIZE_NET_SIGNATURE_KEY": signature_key,
            "EMULATOR_PORT": str(emulator_port),
            "EASYPAY_EMULATOR_URL": f"http://127.0.0.1:{emulator_port}",
            "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
            "GUNICORN_WORKERS": "2",
            "GUNICORN_THREADS": "8",
        }
        self.write_env(settings)
        env = self.app_env(settings)
        log("migrating")
        self.manage(env, "migrate", "--noinput")
        emulator = [PYTHON, "-m", "payments.gateways.sandbox", "--port", str(emulator_port)]
        emulator += [
            "--db",
            str(self.dir / "emulator.sqlite3"),
            "--webhook-url",
            f"{lb_url}/api/v1/webhooks/authorize-net",
        ]
        self.spawn("emulator", emulator, env)
        for index, web_port in enumerate(web_ports, start=1):
            self.spawn(f"web{index}", self.web_argv(web_port), env)
        self.state["web_ports"] = web_ports
        self.state["lb_port"] = port
        self.start_haproxy(port, web_ports)
        for index in range(1, workers + 1):
            self.spawn(f"worker{index}", self.worker_argv(index), env)
        self.spawn("beat", self.beat_argv(), env)
        wait_until(
            lambda: http_status(f"http://127.0.0.1:{emulator_port}/_emulator/health") == 200, 120, "the emulator"
        )
        for index, web_port in enumerate(web_ports, start=1):
            wait_until(
                lambda p=web_port, n=index: (
                    self._check_alive(f"web{n}") and http_status(f"http://127.0.0.1:{p}/health/ready") == 200
                ),
                240,
                f"web{index} to be ready",
                interval=0.5,
            )
        wait_until(
            lambda: http_status(f"{lb_url}/health/ready") == 200,
            120,
            "/health/ready through the balancer",
            interval=0.5,
        )
        for index in range(1, workers + 1):
            wait_until(
                lambda n=index: self._check_alive(f"worker{n}") and "ready." in self.tail(f"worker{n}", 400),
                240,
                f"worker{index}",
                interval=0.5,
            )
        self._check_alive("beat")
        self.write_pids()
        log(f"EasyPay cluster up in {time.monotonic() - started:.0f}s: {lb_url}")

    def _check_alive(self, name: str) -> bool:
        if not self.alive(name):
            raise ClusterError(f"{name} exited:\n{self.tail(name)}")
        return True

    def write_env(self, settings: dict[str, str]) -> None:
        lines = [
            "# EasyPay cluster (scripts/cluster.py): `. DIR/env` then `python manage.py ...` talks to it.",
            *(f"export {name}={_shell_quote(value)}" for name, value in settings.items()),
            # `python` and `celery` are the project's virtualenv's, so `python manage.py ...` just works
            # (a literal value: a reader that parses these lines without a shell gets a usable PATH too).
            f"export PATH={_shell_quote(_venv_path())}",
        ]
        (self.dir / "env").write_text("\n".join(lines) + "\n")

    def write_pids(self) -> None:
        pids = {name: entry["pid"] for name, entry in self.state["processes"].items()}
        (self.dir / "pids.json").write_text(json.dumps(pids, indent=2) + "\n")

    def stop_process(self, name: str, grace: float = 20) -> None:
        entry = self.state["processes"].get(name)
        if not entry:
            return
        pid = entry["pid"]
        if entry["kind"] == "postgres":
            if self.alive(name):
                self._as_pg([pg_bin("pg_ctl"), "-D", entry["data"], "-m", "fast", "-w", "-t", "30", "stop"], timeout=60)
            if self.alive(name):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            return
        if self.alive(name):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while self.alive(name) and time.monotonic() < deadline:
                time.sleep(0.1)
        # The group may still hold children (gunicorn workers, the Celery pool) after its leader left;
        # the group id is the leader's pid and only ever ours while one of them lives.
        if entry.get("start") and (self.alive(name) or _group_alive(pid)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)

    def down(self) -> None:
        order = ["lb", "beat"]
        names = list(self.state["processes"])
        ordered = [n for n in order if n in names]
        ordered += [n for n in names if n.startswith(("web", "worker", "beat", "emulator")) and n not in ordered]
        ordered += [n for n in names if n.startswith("sentinel")]
        ordered += [n for n in names if n.startswith("redis")]
        ordered += [n for n in names if n.startswith("pg-replica")]
        ordered += [n for n in names if n not in ordered]
        webs = [n for n in ordered if n.startswith(("web", "worker", "beat"))]
        # Web instances and workers drain in parallel (SIGTERM to all, then wait for each).
        for name in webs:
            entry = self.state["processes"][name]
            if self.alive(name):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(entry["pid"], signal.SIGTERM)
        for name in ordered:
            self.stop_process(name)
            log(f"stopped {name}")
        for extra in self.state.get("pg_dirs", []):
            shutil.rmtree(extra, ignore_errors=True)


def _group_alive(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            return True
    return False


def _venv_path() -> str:
    rest = [p for p in os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin").split(os.pathsep) if p]
    return os.pathsep.join(dict.fromkeys([str(VENV_BIN), *rest, "/usr/local/bin", "/usr/bin", "/bin"]))


def _shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


# --- command line -------------------------------------------------------------------------------------


def cmd_up(args) -> int:
    directory = Path(args.dir).resolve()
    if (directory / "state.json").exists():
        existing = Cluster(directory)
        if any(existing.alive(name) for name in existing.state.get("processes", {})):
            log(f"a cluster is already running in {directory}: `down --dir {directory}` first")
            return 1
        existing.down()
        _remove_dir(directory)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    cluster = Cluster(directory)
    base = args.base_port or args.port + 1
    try:
        cluster.up(args.port, base, args.web, args.replicas, args.workers)
    except BaseException as exc:
        log(f"up failed: {exc}")
        for name in list(cluster.state["processes"]):
            if name.startswith(("web", "worker", "beat", "emulator", "lb")) and not cluster.alive(name):
                log(f"--- {name} log ---\n{cluster.tail(name)}")
        with contextlib.suppress(BaseException):
            cluster.down()
        if not args.keep_on_failure:
            _remove_dir(directory)
        return 1
    print(f"EasyPay cluster: {args.port and f'http://127.0.0.1:{args.port}'}  (env: {directory / 'env'})")
    return 0


def _remove_dir(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


def cmd_down(args) -> int:
    directory = Path(args.dir).resolve()
    if not (directory / "state.json").exists():
        log(f"no cluster state in {directory}")
        _remove_dir(directory)
        return 0
    cluster = Cluster(directory)
    cluster.down()
    left = [name for name in cluster.state["processes"] if cluster.alive(name)]
    _remove_dir(directory)
    if left:
        log(f"still running: {', '.join(left)}")
        return 1
    log("cluster stopped and its data removed")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/cluster.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a cluster in the background")
    up.add_argument("--dir", required=True, help="where its data, logs, env and pids.json go")
    up.add_argument("--port", type=int, default=8000, help="the load balancer's port (default 8000)")
    up.add_argument("--web", type=int, default=3, help="web instances (default 3)")
    up.add_argument("--replicas", type=int, default=2, help="PostgreSQL streaming replicas (default 2)")
    up.add_argument("--workers", type=int, default=2, help="Celery workers (default 2)")
    up.add_argument("--base-port", type=int, default=0, help="first port of the other servers (default --port + 1)")
    up.add_argument("--keep-on-failure", action="store_true", help="keep DIR's logs when up fails")
    down = sub.add_parser("down", help="stop a cluster and remove its data")
    down.add_argument("--dir", required=True)
    args = parser.parse_args(argv)
    if args.command == "up":
        if args.web < 1 or args.workers < 0 or args.replicas < 0:
            parser.error("--web must be at least 1, --workers and --replicas at least 0")
        return cmd_up(args)
    return cmd_down(args)


if __name__ == "__main__":
    sys.exit(main())
