"""A cluster from ``scripts/cluster.py`` for the cluster tests: start it, talk to it, break it, check the
ledger. Processes are stopped by the pids ``up`` recorded in ``DIR/pids.json``."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from scripts.loopback import http_request
from scripts.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
CLUSTER = [sys.executable, str(ROOT / "scripts" / "cluster.py")]


def log(message: str) -> None:
    print(f"[cluster-test {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _free_block(size: int) -> int:
    """A port with ``size`` free ports after it (the cluster falls back to any free port anyway)."""
    for _ in range(50):
        start = free_port()
        if start + size < 65000 and all(_free(p) for p in range(start, start + size)):
            return start
    return free_port()


def _free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Cluster:
    def __init__(self, web: int = 3, replicas: int = 2, workers: int = 2) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="easypay_cluster_test_"))
        self.port = int(os.environ.get("EASYPAY_CLUSTER_PORT") or _free_block(40))
        self.web, self.replicas, self.workers = web, replicas, workers
        self.env: dict[str, str] = {}
        self.pids: dict[str, int] = {}
        self.api_key = ""
        self.merchant_id = ""

    # lifecycle -----------------------------------------------------------------------------------------

    def up(self) -> Cluster:
        argv = [*CLUSTER, "up", "--dir", str(self.dir), "--port", str(self.port), "--web", str(self.web)]
        argv += ["--replicas", str(self.replicas), "--workers", str(self.workers), "--base-port", str(self.port + 1)]
        started = time.monotonic()
        result = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"cluster up failed ({result.returncode}):\n{result.stderr[-6000:]}")
        self.up_seconds = time.monotonic() - started
        self.env = self._read_env()
        self.pids = json.loads((self.dir / "pids.json").read_text())
        self.state = json.loads((self.dir / "state.json").read_text())
        key = self.manage("create_api_key", "--merchant", f"cluster-{uuid.uuid4().hex[:8]}", "--json",
                          "--rate-limit-per-minute", "100000", "--rate-limit-per-hour", "1000000",
                          "--rate-limit-per-day", "10000000")  # fmt: skip
        created = json.loads(key.stdout)
        self.api_key, self.merchant_id = created["key"], created["merchant_id"]
        log(f"cluster up on port {self.port} in {self.up_seconds:.0f}s")
        return self

    def down(self) -> None:
        subprocess.run([*CLUSTER, "down", "--dir", str(self.dir)], capture_output=True, timeout=300, check=False)

    def _read_env(self) -> dict[str, str]:
        env = {}
        for line in (self.dir / "env").read_text().splitlines():
            if line.startswith("export "):
                name, _, value = line[len("export ") :].partition("=")
                env[name] = shlex.split(value)[0] if value else ""
        return env

    def process_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "CELERY_"))}
        env.update(self.env)
        env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        return env

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [PYTHON, "manage.py", *args], cwd=ROOT, env=self.process_env(), capture_output=True, text=True, timeout=300
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {args[0]} failed: {result.stderr[-3000:]}")
        return result

    # talking to it -------------------------------------------------------------------------------------

    def api(self, method: str, path: str, body=None, headers: dict | None = None, port: int | None = None):
        hdrs = {"X-API-Key": self.api_key, **(headers or {})}
        return http_request(port or self.port, method, path, body, hdrs, timeout=30)

    def web_ports(self) -> list[int]:
        return self.state["web_ports"]

    def sql(self, query: str, params=None, url: str | None = None) -> list[tuple]:
        import psycopg

        with psycopg.connect(url or self.env["DATABASE_URL"], autocommit=True, connect_timeout=5) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def replica_urls(self) -> list[str]:
        return [u for u in self.env.get("DATABASE_REPLICA_URLS", "").split(",") if u]

    def emulator_transactions(self) -> list[dict]:
        port = int(self.env["EMULATOR_PORT"])
        reply = http_request(port, "GET", "/_emulator/transactions", timeout=30)
        body = reply.body
        return body.get("data", body) if isinstance(body, dict) else body

    def redis_master_port(self) -> int | None:
        import redis

        for port in self.state["redis"]["sentinels"]:
            with contextlib.suppress(redis.RedisError):
                client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
                host_port = client.sentinel_get_master_addr_by_name("easypay")
                if host_port:
                    return int(host_port[1])
        return None

    # breaking it ---------------------------------------------------------------------------------------

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal ``name``'s whole process group (gunicorn master and workers, the Celery pool)."""
        pid = self.pids[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)
        log(f"sent signal {sig} to {name} (group {pid})")

    def start_extra(self, name: str, argv: list[str]) -> subprocess.Popen:
        out = open(self.dir / "logs" / f"{name}.log", "ab")  # noqa: SIM115 (closed in stop_extra)
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=self.process_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        proc._log_file = out  # type: ignore[attr-defined]
        return proc

    @staticmethod
    def stop_extra(proc: subprocess.Popen) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        proc._log_file.close()  # type: ignore[attr-defined]

    def log_text(self, name: str) -> str:
        path = self.dir / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _final(reply) -> bool:
    """The payment's outcome: approved, declined, or EasyPay's own 502 processor_error (the payment is
    kept failed or pending, and a retry with the key gets that answer again). A 502/503 from the balancer
    (no instance answered) is not an outcome."""
    return reply.status in (201, 402) or (reply.status == 502 and reply.error_code == "processor_error")


class PaymentClients:
    """Threads making payments through the balancer, each retrying a failed attempt with the SAME
    Idempotency-Key until it gets a final answer (201 or 402). Records every status seen."""

    def __init__(self, cluster: Cluster, threads: int = 4, customer: str | None = None) -> None:
        self.cluster = cluster
        self.threads = threads
        self.customer = customer or f"ledger-{uuid.uuid4().hex[:10]}"
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.outcomes: dict[str, dict] = {}  # key -> {"ids": set of payment ids answered, "attempts": n}
        self.statuses: list[tuple[float, int]] = []
        self._workers: list[threading.Thread] = []

    def _one(self, key: str) -> None:
        body = {"amount": "3.21", "currency": "USD", "card_token": "tok_visa", "customer_id": self.customer}
        attempts = 0
        deadline = time.monotonic() + 180  # a claim left by a killed request is taken over after ~66 s
        while True:
            attempts += 1
            reply = self.cluster.api("POST", "/api/v1/payments", body, {"Idempotency-Key": key})
            with self.lock:
                self.statuses.append((time.monotonic(), reply.status, _final(reply)))
                entry = self.outcomes.setdefault(key, {"ids": set(), "attempts": 0, "final": None})
                entry["attempts"] = attempts
                final = _final(reply)
                if final and isinstance(reply.data, dict) and reply.data.get("id"):
                    entry["ids"].add(reply.data["id"])
                if final:
                    entry["final"] = reply.status
            if final:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{key}: no final answer after {attempts} attempts (last {reply.status})")
            time.sleep(1.0 if reply.status == 409 else 0.2)

    def _loop(self) -> None:
        while not self.stop.is_set():
            self._one(f"cluster-{uuid.uuid4().hex}")

    def start(self) -> PaymentClients:
        for _ in range(self.threads):
            thread = threading.Thread(target=self._loop, daemon=True)
            thread.start()
            self._workers.append(thread)
        return self

    def finish(self) -> None:
        self.stop.set()
        for thread in self._workers:
            thread.join(200)

    def errors_after(self, since: float) -> list[int]:
        return [status for at, status, final in self.statuses if at >= since and not final]

    def transport_errors_after(self, since: float) -> list[float]:
        """When a request failed for want of an instance (no answer, or the balancer's own 502/503/504),
        as opposed to 409 from a retry finding its key's first attempt still claimed."""
        return [at for at, status, final in self.statuses if at >= since and not final and status in (0, 502, 503, 504)]

    def processor_errors(self) -> int:
        return sum(1 for outcome in self.outcomes.values() if outcome["final"] == 502)

    def unfinished(self) -> list[str]:
        return [key for key, outcome in self.outcomes.items() if outcome["final"] is None]

    def ledger_problems(self) -> list[str]:
        """Each key: one payment row, one answer id, one processor charge. Returns what is wrong."""
        problems = []
        rows = self.cluster.sql(
            "SELECT idempotency_key, count(*), min(processor_transaction_id) FROM payments_payment "
            "WHERE customer_id = %s GROUP BY idempotency_key",
            (self.customer,),
        )
        stored = {key: (count, txn) for key, count, txn in rows}
        for key, outcome in self.outcomes.items():
            if outcome["final"] is None:
                continue  # still in flight when the test stopped it
            if len(outcome["ids"]) != 1:
                problems.append(f"{key}: answered with {len(outcome['ids'])} different payments")
            if stored.get(key, (0, None))[0] != 1:
                problems.append(f"{key}: {stored.get(key, (0, None))[0]} payment rows")
        charges = [
            tx
            for tx in self.cluster.emulator_transactions()
            if tx.get("customer_id") == self.customer and tx.get("transaction_type") == "authCaptureTransaction"
        ]
        charge_ids = [tx["trans_id"] for tx in charges]
        recorded = [txn for count, txn in stored.values() if txn]
        if len(charge_ids) != len(set(charge_ids)) or len(charges) > len(stored):
            problems.append(f"{len(charges)} processor charges for {len(stored)} payments")
        missing = set(recorded) - set(charge_ids)
        if missing:
            problems.append(f"payments name processor transactions the processor never made: {sorted(missing)[:5]}")
        # A charge no payment names belongs to a payment still pending (its answer was lost): at most one
        # per payment without a transaction id, never a second charge for one key.
        if len(set(charge_ids) - set(recorded)) > len(stored) - len(recorded):
            problems.append("charges without a payment to account for them")
        return problems
