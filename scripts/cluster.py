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

Standard library only: it may run before the virtualenv exists (it creates it with ``make venv``). This
file is the command line and the ``Cluster`` that puts the parts in ``scripts/clusterlib/`` together.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import string
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The parts of the cluster (standard library only, like this script).
from scripts.clusterlib.app import AppMixin  # noqa: E402
from scripts.clusterlib.haproxy import HaproxyMixin  # noqa: E402
from scripts.clusterlib.postgres import PostgresMixin  # noqa: E402
from scripts.clusterlib.sentinel import RedisMixin  # noqa: E402
from scripts.clusterlib.topology import (  # noqa: E402
    PYTHON,
    SENTINEL_MASTER,
    ClusterError,
    ensure_packages,
    ensure_venv,
    group_alive,
    http_status,
    log,
    pg_bin,
    port_free,
    wait_until,
)

__all__ = ["Cluster", "ClusterError", "main"]


class Cluster(PostgresMixin, RedisMixin, HaproxyMixin, AppMixin):
    """A cluster in ``DIR``: its state file (``topology.ClusterState``) and the parts that start it."""

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
        if entry.get("start") and (self.alive(name) or group_alive(pid)):
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
