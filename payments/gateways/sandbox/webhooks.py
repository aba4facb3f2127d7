"""Authorize.Net-shaped webhook notifications, signed and posted from a background thread.

Each notification is compact JSON (amounts written as ``10.00``, like the real payloads) signed
with ``X-ANET-Signature: sha512=<UPPERCASE hex HMAC-SHA512 of the raw body>`` keyed with the
signature key's literal text. Delivery never blocks the XML reply: a scheduler thread posts each
notification and retries a failed delivery (non-2xx or no answer) after each of ``retry_delays``.
Outbound requests ignore proxy environment variables: the receiver is usually on localhost.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import logging
import threading
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from decimal import Decimal

import requests

from .state import Event, money

logger = logging.getLogger(__name__)

FRAUD_EVENTS = {"payment.fraud.held": "hold", "payment.fraud.approved": "approve", "payment.fraud.declined": "decline"}


def sign(body: bytes, signature_key: str) -> str:
    """The X-ANET-Signature header value for ``body``."""
    digest = hmac.new(signature_key.encode("utf-8"), body, hashlib.sha512).hexdigest().upper()
    return f"sha512={digest}"


def _dump(value: object) -> str:
    """Compact JSON where Decimals are numbers with two decimals (json would refuse them)."""
    if isinstance(value, Decimal):
        return money(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_dump(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def notification_body(event: Event, webhook_id: str) -> bytes:
    snap = event.snapshot
    payload: dict[str, object] = {
        "responseCode": snap["responseCode"],
        "authCode": snap["authCode"],
        "avsResponse": snap["avsResponse"],
        "authAmount": snap["authAmount"],
    }
    if snap["merchantReferenceId"]:
        payload["merchantReferenceId"] = snap["merchantReferenceId"]
    if snap["invoiceNumber"]:
        payload["invoiceNumber"] = snap["invoiceNumber"]
    if event.event_type in FRAUD_EVENTS:
        payload["fraudList"] = [{"fraudFilter": "Amount Filter", "fraudAction": FRAUD_EVENTS[event.event_type]}]
    payload["entityName"] = "transaction"
    payload["id"] = snap["id"]
    notification = {
        "notificationId": str(uuid.uuid4()),
        "eventType": f"net.authorize.{event.event_type}",
        "eventDate": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "webhookId": webhook_id,
        "payload": payload,
    }
    return _dump(notification).encode("utf-8")


class WebhookSender:
    def __init__(
        self,
        *,
        signature_key: str,
        url: str | None = None,
        retry_delays: tuple[float, ...] = (0.5, 2.0),
        timeout: float = 5.0,
    ) -> None:
        self.signature_key = signature_key
        self.url = url
        self.retry_delays = retry_delays
        self.timeout = timeout
        self.webhook_id = str(uuid.uuid4())
        self._http = requests.Session()  # used by the one delivery thread only
        self._http.trust_env = False
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, dict]] = []
        self._sequence = itertools.count()
        self._in_flight = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._deliveries: deque[dict] = deque(maxlen=1000)

    @property
    def deliveries(self) -> list[dict]:
        """Every delivery attempt so far (newest last), for tests and GET /_emulator/webhooks."""
        with self._cond:
            return list(self._deliveries)

    def start(self) -> None:
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="anet-sandbox-webhooks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=self.timeout + 1)

    def clear(self) -> None:
        """Forget queued retries and the delivery log (between tests)."""
        with self._cond:
            self._heap.clear()
            self._deliveries.clear()

    def notify(self, events: list[Event]) -> None:
        url = self.url
        if not url:
            return
        with self._cond:
            for event in events:
                body = notification_body(event, self.webhook_id)
                job = {"url": url, "body": body, "event_type": event.event_type, "attempt": 1}
                heapq.heappush(self._heap, (time.monotonic(), next(self._sequence), job))
            self._cond.notify_all()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until nothing is queued or being delivered (retries included)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._heap or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._cond.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                if self._stopping:
                    return
                _, _, job = heapq.heappop(self._heap)
                self._in_flight += 1
            try:
                self._deliver(job)
            finally:
                with self._cond:
                    self._in_flight -= 1
                    self._cond.notify_all()

    def _deliver(self, job: dict) -> None:
        body = job["body"]
        headers = {"Content-Type": "application/json", "X-ANET-Signature": sign(body, self.signature_key)}
        status, error = None, ""
        try:
            status = self._http.post(job["url"], data=body, headers=headers, timeout=self.timeout).status_code
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        delivered = status is not None and 200 <= status < 300
        record = {
            "notification_id": json.loads(body)["notificationId"],
            "event_type": job["event_type"],
            "url": job["url"],
            "attempt": job["attempt"],
            "status": status,
            "error": error,
            "delivered": delivered,
        }
        with self._cond:
            self._deliveries.append(record)
            if not delivered and job["attempt"] <= len(self.retry_delays):
                delay = self.retry_delays[job["attempt"] - 1]
                retry = {**job, "attempt": job["attempt"] + 1}
                heapq.heappush(self._heap, (time.monotonic() + delay, next(self._sequence), retry))
                self._cond.notify_all()
        if not delivered:
            logger.warning(
                "webhook %s attempt %s to %s failed: %s", job["event_type"], job["attempt"], job["url"], error or status
            )
