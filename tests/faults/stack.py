"""A small process orchestrator for the fault tests and the soak: the real EasyPay stack on loopback.

``Stack`` starts, each in its own session (process group) and on free ports:

* PostgreSQL: a fresh database ``easypay_faults_<tag>_<time>_<pid>`` on the machine's server, or a
  PRIVATE server (``initdb`` + ``pg_ctl`` from /usr/lib/postgresql/<v>/bin, run as the ``postgres``
  system user when we are root) that a test may stop and start again;
* Redis: a PRIVATE ``redis-server`` on a free port (the default: runs of several checkouts at once,
  or of CI, never flush each other's data), or a db of the machine's server (``private_redis=False``,
  flushed before and after);
* the Authorize.Net emulator (``python -m payments.gateways.sandbox``, state in a SQLite file so a
  restart keeps its transactions), a webhook receiver (``scripts/webhook_receiver.py``);
* ``migrate``, a Celery worker (prefork), Celery beat, gunicorn (gthread) serving config.wsgi with
  production settings (``tests.faults.settings``: production plus two knobs, see that module);
* a merchant with an API key of very high limits and a webhook endpoint pointing at the receiver.

Every process is stopped by its process-group id (its own pid) in ``stop()``, the database is
dropped, private servers are stopped and their directories removed; ``stop()`` also runs at exit
and on SIGTERM. Nothing here looks processes up by name.

    with Stack(tag="demo") as stack:
        r = stack.api("POST", "/api/v1/payments", {...})
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import http.client
import json
import os
import pwd
import secrets
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from scripts.processes import Processes, children_of, free_port, manage, migrate, port_open

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
VENV_BIN = ROOT / ".venv" / "bin"
SHARED_PG_ADMIN = os.environ.get("FAULTS_PG_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
SHARED_REDIS = os.environ.get("FAULTS_REDIS_HOST_PORT") or "127.0.0.1:6379"


def log(message: str) -> None:
    print(f"[stack {datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"{name} not found under /usr/lib/postgresql/*/bin")
    return found[-1]


# --- HTTP ------------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: Any  # parsed JSON, else the text
    raw: bytes
    headers: dict[str, str]
    elapsed: float
    error: str | None = None  # transport failure (status 0)

    @property
    def is_json(self) -> bool:
        return "application/json" in self.headers.get("content-type", "")

    @property
    def error_code(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return self.body["error"].get("code")
        return None

    @property
    def data(self) -> Any:
        return self.body.get("data") if isinstance(self.body, dict) else None


def http_request(
    port: int, method: str, path: str, body: Any = None, headers: dict | None = None, timeout: float = 30
) -> Reply:
    """One request on a fresh connection. A transport failure is a Reply with status 0 and ``error``."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        hdrs = {"Accept": "application/json", **(headers or {})}
        if payload is not None:
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=payload, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        resp_headers = {k.lower(): v for k, v in resp.getheaders()}
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return Reply(resp.status, parsed, raw, resp_headers, time.monotonic() - started)
    except (OSError, http.client.HTTPException) as exc:
        return Reply(0, None, b"", {}, time.monotonic() - started, error=f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()


def wait_until(predicate, timeout: float, interval: float = 0.25, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


# --- processes -------------------------------------------------------------------------------------


# --- private servers -------------------------------------------------------------------------------


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
        return subprocess.run(
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


# --- the stack -------------------------------------------------------------------------------------


@dataclass
class StackOptions:
    tag: str = "t"
    private_postgres: bool = False
    private_redis: bool = True
    redis_db: int = 12  # only with private_redis=False
    gunicorn_threads: int = 8
    celery_concurrency: int = 2
    beat: bool = True
    webhook_endpoint: bool = True
    env: dict[str, str] = field(default_factory=dict)


DEFAULT_ENV = {
    "AUTHORIZE_NET_READ_TIMEOUT": "5",
    "AUTHORIZE_NET_CONNECT_TIMEOUT": "2",
    "AUTHORIZE_NET_CIRCUIT_FAILURE_THRESHOLD": "3",
    "AUTHORIZE_NET_CIRCUIT_RESET_SECONDS": "5",
    "PAYMENTS_RECONCILE_AFTER_SECONDS": "2",
    "PAYMENTS_RECONCILE_GRACE_SECONDS": "60",
    "PAYMENT_CACHE_SECONDS": "5",
    # A claim left by a killed request is taken over by a retry after this long (> the 2+5 s timeouts).
    "IDEMPOTENCY_STALE_SECONDS": "12",
    "WEBHOOK_TIMEOUT_SECONDS": "3",
    "WEBHOOK_RETRY_SCHEDULE_SECONDS": "2,4,8",
    "FAULTS_SWEEP_SECONDS": "5",
    "FAULTS_VISIBILITY_TIMEOUT": "20",
    "LOG_LEVEL": "INFO",
}


class Stack:
    def __init__(self, options: StackOptions | None = None, **kwargs: Any) -> None:
        self.opts = options or StackOptions(**kwargs)
        self.state_dir = Path(tempfile.mkdtemp(prefix=f"easypay_faults_{self.opts.tag}_"))
        self.procs = Processes(self.state_dir, log=log)
        stamp = datetime.now().strftime("%Y%m%d%H%M%S")
        self.db_name = f"easypay_faults_{self.opts.tag}_{stamp}_{os.getpid()}"
        self.pg: PrivatePostgres | None = None
        self.redis: PrivateRedis | None = None
        self.web_port = free_port()
        self.emulator_port = free_port()
        self.receiver_port = free_port()
        self.db_created = False
        self.api_key = ""
        self.merchant_id = ""
        self.endpoint: dict = {}
        self._stopped = False
        self._lock = threading.Lock()

    # setup ---------------------------------------------------------------------------------------

    @property
    def pg_admin_url(self) -> str:
        return self.pg.url_admin if self.pg else SHARED_PG_ADMIN

    @property
    def database_url(self) -> str:
        base = self.pg_admin_url.rsplit("/", 1)[0]
        return f"{base}/{self.db_name}"

    @property
    def redis_url(self) -> str:
        if self.redis:
            return f"redis://127.0.0.1:{self.redis.port}/0"
        return f"redis://{SHARED_REDIS}/{self.opts.redis_db}"

    def _env(self) -> dict[str, str]:
        alphabet = string.ascii_letters + string.digits + "!#%()*+,-./:;<=>?@[]^_{|}~"
        secret_key = "".join(secrets.choice(alphabet) for _ in range(50))
        env = {
            **os.environ,
            **DEFAULT_ENV,
            "DJANGO_SETTINGS_MODULE": "tests.faults.settings",
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
        for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            env.pop(name, None)
        return env

    def start(self) -> Stack:
        atexit.register(self.stop)
        if threading.current_thread() is threading.main_thread():
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

    def reap_stale_databases(self) -> None:
        """Drop ``easypay_faults_*`` databases left by runs that died hard (their pid, last in the name,
        is gone). Only on the shared server, only our prefix."""
        with self._connect(self.pg_admin_url) as conn:
            names = [r[0] for r in conn.execute("SELECT datname FROM pg_database")]
            for name in (n for n in names if n.startswith("easypay_faults_")):
                owner = name.rsplit("_", 1)[-1]
                if not owner.isdigit() or int(owner) == os.getpid() or Path(f"/proc/{owner}").exists():
                    continue
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                log(f"dropped stale database {name}")

    def create_database(self) -> None:
        if self.pg is None:
            self.reap_stale_databases()
        (self.state_dir / "dbname").write_text(self.db_name)
        with self._connect(self.pg_admin_url) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        self.db_created = True
        log(f"created database {self.db_name}")

    def drop_database(self) -> None:
        if not self.db_created:
            return
        if self.pg is not None:
            self.db_created = False  # the whole private cluster goes away with its directory
            return
        with self._connect(self.pg_admin_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        self.db_created = False
        log(f"dropped database {self.db_name}")

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
        log("migrated")

    # processes -------------------------------------------------------------------------------------

    def start_emulator(self) -> None:
        argv = [PYTHON, "-m", "payments.gateways.sandbox", "--port", str(self.emulator_port)]
        argv += ["--db", str(self.state_dir / "emulator.sqlite3")]
        proc = self.procs.start("emulator", argv, self.env)
        wait_until(
            lambda: (
                proc.poll() is None
                and http_request(self.emulator_port, "GET", "/_emulator/health", timeout=2).status == 200
            ),
            60,
            what="the emulator",
        )

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
        argv = [
            str(VENV_BIN / "celery"),
            "-A",
            "config",
            "worker",
            "--loglevel",
            "INFO",
            "--pool",
            "prefork",
            "--concurrency",
            str(self.opts.celery_concurrency),
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            f"faults-{self.opts.tag}-{os.getpid()}-{int(time.time())}@%h",
        ]
        self.procs.start(name, argv, self.env)
        wait_until(lambda: "ready." in self.procs.tail(name, 200), 90, interval=0.5, what="the Celery worker")

    def start_beat(self) -> None:
        argv = [
            str(VENV_BIN / "celery"),
            "-A",
            "config",
            "beat",
            "--loglevel",
            "INFO",
            "--pidfile",
            str(self.state_dir / "beat.pid"),
        ]
        self.procs.start("beat", argv, self.env)

    def start_gunicorn(self) -> None:
        argv = [
            str(VENV_BIN / "gunicorn"),
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{self.web_port}",
            "--worker-class",
            "gthread",
            "--workers",
            "1",
            "--threads",
            str(self.opts.gunicorn_threads),
            "--timeout",
            "120",
            "--graceful-timeout",
            "5",
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

    def gunicorn_worker_pids(self) -> list[int]:
        pid = self.procs.pid("gunicorn")
        return children_of(pid) if pid else []

    def celery_pool_pids(self, name: str = "celery") -> list[int]:
        pid = self.procs.pid(name)
        return children_of(pid) if pid else []

    # seed ------------------------------------------------------------------------------------------

    def seed(self) -> None:
        result = self.manage(
            "create_api_key",
            "--merchant",
            f"faults-{self.opts.tag}",
            "--rate-limit-per-minute",
            "100000000",
            "--rate-limit-per-hour",
            "100000000",
            "--rate-limit-per-day",
            "100000000",
            "--merchant-rate-limit-per-minute",
            "100000000",
            "--merchant-rate-limit-per-hour",
            "100000000",
            "--merchant-rate-limit-per-day",
            "100000000",
            "--json",
        )
        if result.returncode != 0:
            raise RuntimeError(f"create_api_key failed: {result.stderr[-2000:]}")
        created = json.loads(result.stdout.strip().splitlines()[-1])
        self.api_key, self.merchant_id = created["key"], created["merchant_id"]
        if self.opts.webhook_endpoint:
            reply = self.api(
                "POST",
                "/api/v1/webhooks",
                {"url": f"http://127.0.0.1:{self.receiver_port}/hook", "events": ["*"], "description": "faults"},
            )
            if reply.status != 201:
                raise RuntimeError(f"webhook endpoint creation failed: {reply.status} {reply.body}")
            self.endpoint = reply.data
            self.receiver_config(secret=self.endpoint["secret"])
        log(f"seeded merchant {self.merchant_id}")

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
                log(f"--- {name} log (last {lines} lines) ---\n{tail}")

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
            log(f"could not drop {self.db_name}: {exc}")
        if self.pg is not None:
            self.pg.destroy()
        if os.environ.get("FAULTS_KEEP_STATE") == "1":
            log(f"logs kept in {self.state_dir}")
        else:
            shutil.rmtree(self.state_dir, ignore_errors=True)
