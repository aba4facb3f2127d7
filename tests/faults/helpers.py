"""Small helpers shared by the fault tests and the soak."""

from __future__ import annotations

import random
import threading
import uuid
from decimal import Decimal

CHARGE_TYPES = {"authCaptureTransaction", "authOnlyTransaction"}

_used: set[str] = set()
_lock = threading.Lock()


def unique_amount(low: int = 100, high: int = 9999) -> str:
    """An amount no other payment of this run has, so the emulator's transactions can be told apart."""
    with _lock:
        while True:
            value = f"{random.randint(low, high)}.{random.randint(0, 99):02d}"
            if value not in _used:
                _used.add(value)
                return value


def new_key() -> str:
    return f"faults-{uuid.uuid4()}"


def payment_body(amount: str, *, capture: bool = True, token: str = "tok_visa", **extra) -> dict:
    return {"amount": amount, "currency": "USD", "card_token": token, "capture": capture, **extra}


def charges_for(transactions: list[dict], *, amount: str | None = None, reference: str | None = None) -> list[dict]:
    """The emulator's charge transactions (not refunds/voids) with this amount and/or invoice number."""
    out = []
    for tx in transactions:
        if tx.get("transaction_type") not in CHARGE_TYPES:
            continue
        if amount is not None and Decimal(str(tx["amount"])) != Decimal(amount):
            continue
        if reference is not None and tx.get("invoice_number") != reference:
            continue
        out.append(tx)
    return out


def is_error_envelope(reply) -> bool:
    """A contract error body: JSON, {"error": {code, message, details}, request_id, timestamp}."""
    body = reply.body
    return (
        reply.is_json
        and isinstance(body, dict)
        and isinstance(body.get("error"), dict)
        and {"code", "message", "details"} <= set(body["error"])
        and "request_id" in body
        and "timestamp" in body
    )


def looks_like_leak(reply) -> bool:
    """A traceback or an HTML error page in the body."""
    text = reply.raw.decode(errors="replace")
    return "Traceback" in text or "<html" in text.lower() or 'File "' in text


class Load:
    """Background client threads: each loops POST /payments (a fresh Idempotency-Key), GET of a known
    payment and a list, recording (start, end, kind, reply) until ``stop()``."""

    def __init__(self, stack, *, threads: int = 4, payment_id: str | None = None, pause: float = 0.05) -> None:
        self.stack = stack
        self.payment_id = payment_id
        self.pause = pause
        self.records: list[tuple[float, float, str, object]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def _run(self, index: int) -> None:
        import time

        n = 0
        while not self._stop.is_set():
            n += 1
            started = time.monotonic()
            if self.payment_id and n % 3 == 1:
                kind = "get"
                reply = self.stack.api("GET", f"/api/v1/payments/{self.payment_id}", timeout=20)
            elif n % 3 == 2:
                kind = "list"
                reply = self.stack.api("GET", "/api/v1/payments?limit=5", timeout=20)
            else:
                kind = "post"
                reply = self.stack.api(
                    "POST", "/api/v1/payments", payment_body(unique_amount()), idempotency_key=new_key(), timeout=20
                )
            with self._lock:
                self.records.append((started, time.monotonic(), kind, reply))
            self._stop.wait(self.pause)

    def stop(self) -> list[tuple[float, float, str, object]]:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        with self._lock:
            return list(self.records)
