"""The real EasyPay stack on loopback, for the fault tests, the soak and the benchmark: one copy.

``Stack`` starts, each in its own session (process group) and on free ports:

* PostgreSQL: a fresh database ``<db_prefix>_<tag>_<time>_<pid>`` on a shared server, or a PRIVATE
  server (``initdb`` + ``pg_ctl`` from /usr/lib/postgresql/<v>/bin, run as the ``postgres`` system user
  when we are root) that a test may stop and start again;
* Redis: a PRIVATE ``redis-server`` on a free port (runs of several checkouts at once never flush each
  other's data), or a db of a shared server (``private_redis=False``, flushed before and after);
* the Authorize.Net emulator (``python -m payments.gateways.sandbox``; with ``emulator_db`` its state is
  in a SQLite file, so a restart keeps its transactions), a webhook receiver (``scripts/webhook_receiver.py``);
* ``migrate``, a Celery worker, Celery beat (``beat``), gunicorn (gthread) serving ``wsgi_app`` with
  ``settings_module``;
* then ``seed()``: nothing here; a profile (``tests/faults/stack.py``) adds its merchant.

Every process is stopped by its process-group id (its own pid) in ``stop()``, the database is
dropped, private servers are stopped and their directories removed; ``stop()`` also runs at exit
(and on SIGTERM with ``handle_signals``). Nothing here looks processes up by name.

    with Stack(StackOptions(tag="demo")) as stack:
        r = stack.api("POST", "/api/v1/payments", {...})
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import string
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from scripts.loopback import Reply, http_request, wait_until
from scripts.processes import (
    Processes,
    celery_beat_argv,
    celery_worker_argv,
    children_of,
    free_port,
    make_log,
    manage,
    migrate,
    port_open,
)
from scripts.servers import PrivatePostgres, PrivateRedis

__all__ = ["PrivatePostgres", "PrivateRedis", "Reply", "Stack", "StackOptions", "http_request", "log", "wait_until"]

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python")
LOCAL_PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS = "127.0.0.1:6379"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


log = make_log("stack")


# --- the stack -------------------------------------------------------------------------------------


@dataclass
class StackOptions:
    tag: str = "t"  # in the names of the database and the state dir ("": none)
    name: str = "stack"  # the log prefix
    db_prefix: str = "easypay_stack"
    state_dir: Path | None = None  # given: the caller owns it (kept); else a temp dir removed at stop
    settings_module: str = "config.settings.production"
    wsgi_app: str = "config.wsgi:application"
    pg_admin_url: str = LOCAL_PG_ADMIN
    private_postgres: bool = False
    reap_stale_databases: bool = True  # drop <db_prefix>_* left by dead runs on the shared server
    keep_db: bool = False
    private_redis: bool = True
    redis_url: str | None = None  # the shared server's URL (private_redis=False); default LOCAL_REDIS/redis_db
    redis_db: int = 12
    gunicorn_workers: int = 1
    gunicorn_threads: int = 8
    gunicorn_args: tuple[str, ...] = ("--timeout", "120", "--graceful-timeout", "5")
    celery_pool: str = "prefork"
    celery_concurrency: int = 2
    celery_loglevel: str = "INFO"
    wait_for_celery: bool = True  # until its log says "ready." (needs celery_loglevel INFO)
    beat: bool = True
    emulator_db: bool = True
    emulator_required: bool = True  # else a missing emulator leaves emulator_up False
    handle_signals: bool = True  # SIGTERM stops the stack (when started on the main thread)
    env: dict[str, str] = field(default_factory=dict)


class Stack:
    def __init__(self, options: StackOptions | None = None, **kwargs: Any) -> None:
        self.opts = options or StackOptions(**kwargs)
        self.log = make_log(self.opts.name)
        self.owns_state_dir = self.opts.state_dir is None
        if self.opts.state_dir is None:
            self.state_dir = Path(tempfile.mkdtemp(prefix=f"{self.opts.db_prefix}_{self.opts.tag}_"))
        else:
            self.state_dir = Path(self.opts.state_dir)
            self.state_dir.mkdir(parents=True, exist_ok=True)
        self.procs = Processes(self.state_dir, log=self.log)
        self.python = PYTHON
        stamp = datetime.now().strftime("%Y%m%d%H%M%S")
        self.db_name = "_".join(x for x in (self.opts.db_prefix, self.opts.tag, stamp, str(os.getpid())) if x)
        self.pg: PrivatePostgres | None = None
        self.redis: PrivateRedis | None = None
        self.web_port = free_port()
        self.emulator_port = free_port()
        self.receiver_port = free_port()
        self.db_created = False
        self.emulator_up = False
        self.api_key = ""
        self.merchant_id = ""
        self.endpoint: dict = {}
        self.env: dict[str, str] = {}
        self._stopped = False
        self._lock = threading.Lock()

    # setup ---------------------------------------------------------------------------------------

    @property
    def pg_admin_url(self) -> str:
        return self.pg.url_admin if self.pg else self.opts.pg_admin_url

    @property
    def database_url(self) -> str:
        base = self.pg_admin_url.rsplit("/", 1)[0]
        return f"{base}/{self.db_name}"

    @property
    def redis_url(self) -> str:
        if self.redis:
            return f"redis://127.0.0.1:{self.redis.port}/0"
        return self.opts.redis_url or f"redis://{LOCAL_REDIS}/{self.opts.redis_db}"

    def _env(self) -> dict[str, str]:
        alphabet = string.ascii_letters + string.digits + "!#%()*+,-./:;<=>?@[]^_{|}~"
        secret_key = "".join(secrets.choice(alphabet) for _ in range(50))
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": self.opts.settings_module,
            "SECRET_KEY": secret_key,
            "API_KEY_HASH_KEY": secrets.token_urlsafe(48),
            "JWT_SIGNING_KEY": secrets.token_urlsafe(48),
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "CELERY_BROKER_URL": self.redis_url,
            "CELERY_RESULT_BACKEND": self.redis_url,
            "AUTHORIZE_NET_ENDPOINT": f"http://127.0.0.1:{self.emulator_port}/xml/v1/request.api",
            "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT),
        }
        env.update(self.opts.env)
        for name in PROXY_VARIABLES:
            env.pop(name, None)
        return env

    def start(self) -> Stack:
        atexit.register(self.stop)
        if self.opts.handle_signals and threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGTERM)

            def on_term(signum, frame):
                self.stop()
                if callable(previous):
                    previous(signum, frame)
                raise SystemExit(128 + signum)

            signal.signal(signal.SIGTERM, on_term)
        try:
            if self.opts.private_postgres:
                self.pg = PrivatePostgres()
                self.pg.init()
                self.pg.start()
            if self.opts.private_redis:
                self.redis = PrivateRedis(self.state_dir, self.procs)
                self.redis.start()
            self.env = self._env()
            self.flush_redis()
            self.create_database()
            self.migrate()
            self.start_emulator()
            self.start_receiver()
            self.start_celery()
            if self.opts.beat:
                self.start_beat()
            self.start_gunicorn()
            self.seed()
        except BaseException:
            self.dump_logs()
            self.stop()
            raise
        return self

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        if exc_info[0] is not None:
            self.dump_logs()
        self.stop()

    # database --------------------------------------------------------------------------------------

    def _connect(self, url: str, timeout: int = 5):
        import psycopg

        return psycopg.connect(url, autocommit=True, connect_timeout=timeout)

    def admin_connection(self):
        return self._connect(self.pg_admin_url)

    def db(self):
        return self._connect(self.database_url)

    def reap_stale_databases(self) -> None:
        """Drop ``<db_prefix>_*`` databases left by runs that died hard (their pid, last in the name,
        is gone). Only on the shared server, only our prefix."""
        prefix = f"{self.opts.db_prefix}_"
        with self._connect(self.pg_admin_url) as conn:
            names = [r[0] for r in conn.execute("SELECT datname FROM pg_database")]
            for name in (n for n in names if n.startswith(prefix)):
                owner = name.rsplit("_", 1)[-1]
                if not owner.isdigit() or int(owner) == os.getpid() or Path(f"/proc/{owner}").exists():
                    continue
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                self.log(f"dropped stale database {name}")

    def create_database(self) -> None:
        if self.pg is None and self.opts.reap_stale_databases:
            self.reap_stale_databases()
        (self.state_dir / "dbname").write_text(self.db_name)
        with self._connect(self.pg_admin_url) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        self.db_created = True
        self.log(f"created database {self.db_name}")

    def drop_database(self) -> None:
        if not self.db_created or self.opts.keep_db:
            return
        if self.pg is not None:
            self.db_created = False  # the whole private cluster goes away with its directory
            return
        with self._connect(self.pg_admin_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        self.db_created = False
        self.log(f"dropped database {self.db_name}")

    def sql(self, query: str, params: tuple | dict | None = None) -> list[tuple]:
        with self._connect(self.database_url) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def flush_redis(self) -> None:
        import redis

        redis.Redis.from_url(self.redis_url, socket_connect_timeout=2).flushdb()

    def manage(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return manage(PYTHON, self.env, *args, timeout=timeout)

    def migrate(self) -> None:
        migrate(PYTHON, self.env)
        self.log("migrated")

    # processes -------------------------------------------------------------------------------------

    def start_emulator(self) -> None:
        argv = [PYTHON, "-m", "payments.gateways.sandbox", "--port", str(self.emulator_port)]
        if self.opts.emulator_db:
            argv += ["--db", str(self.state_dir / "emulator.sqlite3")]
        if not self.opts.emulator_required:
            check = subprocess.run(  # noqa: S603 (argv built here, no shell)
                [*argv[:3], "--help"], cwd=ROOT, env=self.env, capture_output=True, timeout=60, check=False
            )
            if check.returncode != 0:
                self.log("Authorize.Net emulator not available (python -m payments.gateways.sandbox failed)")
                return
        proc = self.procs.start("emulator", argv, self.env)
        try:
            wait_until(
                lambda: (
                    proc.poll() is None
                    and http_request(self.emulator_port, "GET", "/_emulator/health", timeout=2).status == 200
                ),
                60 if self.opts.emulator_required else 30,
                what="the emulator",
            )
        except TimeoutError:
            if self.opts.emulator_required:
                raise
            self.log(f"emulator did not answer:\n{self.procs.tail('emulator')}")
            return
        self.emulator_up = True

    def stop_emulator(self) -> None:
        self.procs.kill("emulator", signal.SIGKILL)
        wait_until(lambda: not port_open(self.emulator_port), 10, what="the emulator to go away")

    def start_receiver(self) -> None:
        argv = [PYTHON, str(ROOT / "scripts" / "webhook_receiver.py"), "--port", str(self.receiver_port)]
        proc = self.procs.start("receiver", argv, self.env)
        wait_until(
            lambda: proc.poll() is None and http_request(self.receiver_port, "GET", "/health", timeout=2).status == 200,
            30,
            what="the webhook receiver",
        )

    def start_celery(self, name: str = "celery") -> None:
        argv = celery_worker_argv(
            str(VENV_BIN / "celery"),
            hostname=f"{self.db_name.removeprefix('easypay_')}-{int(time.time())}@%h",
            loglevel=self.opts.celery_loglevel,
            pool=self.opts.celery_pool,
            concurrency=self.opts.celery_concurrency,
        )
        self.procs.start(name, argv, self.env)
        if self.opts.wait_for_celery:
            wait_until(lambda: "ready." in self.procs.tail(name, 200), 90, interval=0.5, what="the Celery worker")

    def start_beat(self) -> None:
        argv = celery_beat_argv(str(VENV_BIN / "celery"), pidfile=str(self.state_dir / "beat.pid"))
        self.procs.start("beat", argv, self.env)

    def start_gunicorn(self) -> None:
        argv = [
            str(VENV_BIN / "gunicorn"),
            self.opts.wsgi_app,
            "--bind",
            f"127.0.0.1:{self.web_port}",
            "--worker-class",
            "gthread",
            "--workers",
            str(self.opts.gunicorn_workers),
            "--threads",
            str(self.opts.gunicorn_threads),
            *self.opts.gunicorn_args,
            "--log-level",
            "warning",
        ]
        proc = self.procs.start("gunicorn", argv, self.env)
        wait_until(
            lambda: proc.poll() is None and http_request(self.web_port, "GET", "/health/live", timeout=3).status == 200,
            90,
            interval=0.5,
            what="gunicorn",
        )
        # Every worker answers (not just the first to boot).
        deadline = time.monotonic() + 30
        while len(self.gunicorn_worker_pids()) < self.opts.gunicorn_workers and time.monotonic() < deadline:
            time.sleep(0.2)

    def gunicorn_worker_pids(self) -> list[int]:
        pid = self.procs.pid("gunicorn")
        return children_of(pid) if pid else []

    def celery_pool_pids(self, name: str = "celery") -> list[int]:
        pid = self.procs.pid(name)
        return children_of(pid) if pid else []

    # seed ------------------------------------------------------------------------------------------

    def seed(self) -> None:
        """What the stack holds once it is up: nothing here (a profile adds its merchant)."""

    def create_api_key(
        self, merchant: str, *, per_minute: int, per_hour: int, per_day: int, name: str | None = None
    ) -> dict:
        """``manage.py create_api_key`` for ``merchant`` with the same limits on the key and the
        merchant; returns its JSON (``key``, ``merchant_id``, ...)."""
        args = ["create_api_key", "--merchant", merchant]
        if name:
            args += ["--name", name]
        for scope in ("", "merchant-"):
            args += [f"--{scope}rate-limit-per-minute", str(per_minute)]
            args += [f"--{scope}rate-limit-per-hour", str(per_hour)]
            args += [f"--{scope}rate-limit-per-day", str(per_day)]
        result = self.manage(*args, "--json")
        if result.returncode != 0:
            raise RuntimeError(f"create_api_key failed: {result.stderr[-2000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])

    # clients ---------------------------------------------------------------------------------------

    def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = None,
        idempotency_key: str | None = None,
        timeout: float = 30,
    ) -> Reply:
        headers = {"X-API-Key": key or self.api_key}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return http_request(self.web_port, method, path, body, headers, timeout=timeout)

    def emulator(self, method: str, path: str, body: Any = None, timeout: float = 30) -> Reply:
        return http_request(self.emulator_port, method, path, body, timeout=timeout)

    def emulator_config(self, **changes: Any) -> dict:
        reply = self.emulator("POST", "/_emulator/config", changes)
        if reply.status != 200:
            raise RuntimeError(f"emulator config failed: {reply.status} {reply.body} {reply.error}")
        return reply.body

    def emulator_transactions(self) -> list[dict]:
        reply = self.emulator("GET", "/_emulator/transactions", timeout=60)
        if reply.status != 200:
            raise RuntimeError(f"emulator transactions failed: {reply.status} {reply.error}")
        return reply.body

    def receiver_config(self, **changes: Any) -> dict:
        return http_request(self.receiver_port, "POST", "/config", changes).body

    def receiver_deliveries(self) -> list[dict]:
        return http_request(self.receiver_port, "GET", "/deliveries").body

    def metrics(self) -> str:
        reply = http_request(self.web_port, "GET", "/metrics")
        return reply.raw.decode(errors="replace")

    # teardown --------------------------------------------------------------------------------------

    def dump_logs(self, lines: int = 40) -> None:
        for name in list(self.procs.logs):
            tail = self.procs.tail(name, lines)
            if tail:
                self.log(f"--- {name} log (last {lines} lines) ---\n{tail}")

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self.procs.stop_all()
        if not self.redis:
            with contextlib.suppress(Exception):
                self.flush_redis()
        try:
            self.drop_database()
        except Exception as exc:
            self.log(f"could not drop {self.db_name}: {exc}")
        if self.pg is not None:
            self.pg.destroy()
        if not self.owns_state_dir:
            return
        if os.environ.get("FAULTS_KEEP_STATE") == "1":
            self.log(f"logs kept in {self.state_dir}")
        else:
            shutil.rmtree(self.state_dir, ignore_errors=True)
