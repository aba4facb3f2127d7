"""`make run` as a new user starts it: the real stack (emulator, schedule, server) on free ports.

Intervals are shortened through the environment (the schedule every second, webhook retries after
2 s, billing every 3 s) so the whole story takes about a minute: the scheduler stays alive, a
failing webhook delivery is retried on its schedule, a due subscription is billed, Ctrl-C ends with
status 0, and a restart keeps the processor's state (a settled payment is refunded, ids continue).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


# MAKE_RUN_TEST_PORT_BASE=N uses ports N (server), N+1 (emulator) and N+2 (webhook receiver) instead of
# free ones the system picks (for machines where each user has a port range).
_PORT_BASE = int(os.environ.get("MAKE_RUN_TEST_PORT_BASE") or 0)


def _free_port(offset: int = 0) -> int:
    if _PORT_BASE:
        return _PORT_BASE + offset
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Receiver:
    """A merchant's webhook endpoint that answers 500 to the first attempt of each event, then 200."""

    def __init__(self) -> None:
        self.attempts: list[tuple[float, str, str]] = []  # (when, event id, type)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                seen = any(a[1] == body["id"] for a in receiver.attempts)
                receiver.attempts.append((time.monotonic(), body["id"], body["type"]))
                self.send_response(200 if seen else 500)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", _free_port(2) if _PORT_BASE else 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


class _Stack:
    def __init__(self, tmp: Path) -> None:
        self.port, self.emulator_port = _free_port(0), _free_port(1)
        self.tmp = tmp
        self.proc: subprocess.Popen | None = None
        self.log = tmp / "make-run.log"

    @property
    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "CELERY_"))}
        keep.pop("DJANGO_SETTINGS_MODULE", None)
        keep.pop("SECRET_KEY", None)
        return {
            **keep,
            "DATABASE_URL": f"sqlite:///{self.tmp / 'db.sqlite3'}",
            "EMULATOR_STATE": str(self.tmp / "anet-emulator.sqlite3"),
            "SCHEDULE_INTERVAL": "1",
            "SCHEDULER_HEARTBEAT_SECONDS": "1",
            "WEBHOOK_RETRY_POLL_SECONDS": "1",
            "WEBHOOK_RETRY_SCHEDULE_SECONDS": "2,2,2",
            "SUBSCRIPTION_BILLING_EVERY_SECONDS": "3",
            "AUDIT_SYNC_WRITES": "true",
        }

    def start(self) -> str:
        """Start `make run`; the demo API key it prints once."""
        out = self.log.open("a")
        self.proc = subprocess.Popen(
            ["make", "run", f"PORT={self.port}", f"EMULATOR_PORT={self.emulator_port}"],
            cwd=ROOT,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal gives it: Ctrl-C reaches them all
            # A terminal starts it with SIGINT at its default; a test run started in the background (`cmd &`
            # in a script) would hand down an ignored SIGINT, which no shell can trap.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        key = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            text = self.log.read_text()
            found = re.findall(r"Demo API key \(shown once\): (\S+)", text)
            key = found[-1] if found else None
            if key and self._ready():
                return key
            time.sleep(0.5)
        raise AssertionError("make run did not answer in 90 s:\n" + self.log.read_text())

    def _ready(self) -> bool:
        try:
            return self.get("/health/ready")[0] == 200
        except OSError:
            return False

    def interrupt(self) -> None:
        """Ctrl-C: SIGINT to the whole process group, as a terminal sends it. make itself dies of the
        SIGINT it got (as it always does; a shell shows nothing for that), but the stack underneath
        must stop cleanly: exit status 0, so make reports no "Error N" and no "Interrupt"."""
        os.killpg(self.proc.pid, signal.SIGINT)
        status = self.proc.wait(timeout=30)
        log = self.log.read_text()
        assert status in (0, -signal.SIGINT), log[-2000:]
        assert "make: ***" not in log, log[-2000:]
        assert log.rstrip().endswith("EasyPay stopped."), log[-2000:]

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def request(self, method: str, path: str, body=None, key: str | None = None) -> tuple[int, dict]:
        headers = {"Content-Type": "application/json"}
        if key:
            headers["X-API-Key"] = key
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def get(self, path: str, key: str | None = None) -> tuple[int, dict]:
        return self.request("GET", path, key=key)


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def stack(tmp_path):
    made = _Stack(tmp_path)
    yield made
    made.kill()


def test_make_run_schedule_retries_bills_and_restarts_with_the_processor_state(stack, tmp_path):
    receiver = _Receiver()
    try:
        key = stack.start()
        log = stack.log.read_text()
        assert log.count("development SECRET_KEY") == 1, log  # said once, not by every manage.py call
        assert "No hostname was supplied" not in log

        status, body = stack.request("POST", "/api/v1/webhooks", {"url": receiver.url, "events": ["*"]}, key)
        assert status == 201, body
        status, body = stack.request(
            "POST", "/api/v1/payments", {"amount": "12.00", "currency": "USD", "card_token": "tok_visa"}, key
        )
        assert status == 201, body
        payment = body["data"]

        # The first delivery of payment.captured fails; the scheduler retries it 2 s later.
        def retried():
            ids = [a[1] for a in receiver.attempts if a[2] == "payment.captured"]
            return len(ids) >= 2 and ids[0] == ids[1]

        _wait_for(retried, 30, "the failed delivery to be retried")
        first, second = [a[0] for a in receiver.attempts if a[2] == "payment.captured"][:2]
        assert second - first >= 1.5  # on its schedule, not at once

        # A subscription starting today is due; the development schedule bills it within seconds.
        status, body = stack.request(
            "POST",
            "/api/v1/subscriptions",
            {
                "customer_id": "cus_1",
                "plan_id": "plan_basic",
                "amount": "9.99",
                "currency": "USD",
                "billing_cycle": "monthly",
                "card_token": "tok_visa",
            },
            key,
        )
        assert status == 201, body
        sub_id = body["data"]["id"]

        def billed():
            status, body = stack.get(f"/api/v1/payments?subscription_id={sub_id}", key)
            return status == 200 and [p for p in body["data"] if p["status"] == "captured"]

        _wait_for(billed, 30, "the due subscription to be billed")

        status, body = stack.get("/health/detailed")
        scheduler = body["data"]["components"]["scheduler"]
        assert scheduler["status"] == "ok" and scheduler["last_beat_age_seconds"] < 10, scheduler

        stack.interrupt()

        # Restarted: the emulator still knows the payment (settled), so it can be refunded.
        key = stack.start()
        status, body = stack.request("POST", f"/api/v1/payments/{payment['id']}/refund", {}, key)
        assert status == 200, body
        assert body["data"]["status"] == "refunded"
        status, body = stack.request(
            "POST", "/api/v1/payments", {"amount": "3.00", "currency": "USD", "card_token": "tok_visa"}, key
        )
        assert status == 201, body
        assert int(body["data"]["processor_transaction_id"]) > int(payment["processor_transaction_id"])
        stack.interrupt()

        db = sqlite3.connect(tmp_path / "db.sqlite3")
        ids = [r[0] for r in db.execute("SELECT processor_transaction_id FROM payments_payment")]
        assert len(ids) == len(set(ids))
    finally:
        receiver.close()
