"""Notifications in a stack run like production: gunicorn, a Celery worker and beat, PostgreSQL, Redis,
the emulator, and a real SMTP server (aiosmtpd) that EMAIL_URL points at. A captured payment, a refund
and a failed subscription charge each deliver the right email; with the SMTP server down the API is as
fast as with it up and the worker's retries deliver once it is back; the sender's throughput is measured.

Runs with ``make faults`` (or ``EASYPAY_FAULTS=1 pytest tests/faults/test_notifications_stack.py``).
Every port is taken from NOTIFICATION_TEST_PORTS (default 9800-9899).
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from aiosmtpd.controller import Controller

from notifications.tests import scan
from notifications.tests.conftest import SMTPServer, _Handler, free_port
from tests.faults.stack import Stack, log, wait_until

pytestmark = pytest.mark.faults

FROM = "receipts@easypay.test"


class RestartableSMTP:
    """An aiosmtpd server on a fixed loopback port that a test can stop and start again."""

    def __init__(self, port: int) -> None:
        self.server = SMTPServer(port=port)
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(_Handler(self.server), hostname="127.0.0.1", port=self.server.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def wait_for(self, address: str, count: int = 1, timeout: float = 60):
        wait_until(lambda: len(self.server.to(address)) >= count, timeout, what=f"mail to {address}")
        return self.server.to(address)


@pytest.fixture(scope="module")
def smtp():
    server = RestartableSMTP(free_port())
    server.start()
    yield server
    server.stop()
    for received in server.server.messages:
        scan.check_raw_email(received.raw, where="in the production-like stack")


@pytest.fixture(scope="module")
def stack(smtp):
    env = {
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp.server.port}",
        "DEFAULT_FROM_EMAIL": f"EasyPay <{FROM}>",
        "EMAIL_TIMEOUT": "3",
        "NOTIFICATION_RETRY_SCHEDULE_SECONDS": "2,4,8,16",
    }
    running = Stack(tag="notif", redis_db=9, webhook_endpoint=False, celery_concurrency=2, env=env)
    taken = {smtp.server.port}
    for name in ("web_port", "emulator_port", "receiver_port"):
        port = free_port(exclude=taken)
        taken.add(port)
        setattr(running, name, port)
    with running:
        reply = running.api(
            "PUT",
            "/api/v1/notification-settings",
            {"sender_name": "Acme Coffee", "reply_to": "help@acme.example"},
        )
        assert reply.status == 200, reply.body
        yield running


def test_receipt_and_refund_receipt_arrive(stack, smtp):
    reply = stack.api(
        "POST",
        "/api/v1/payments",
        {
            "amount": "25.99",
            "currency": "USD",
            "card_token": "tok_visa_4242",
            "customer_email": "jane@example.com",
            "description": "Order 1001",
        },
    )
    assert reply.status == 201, reply.body
    payment = reply.data
    (receipt,) = smtp.wait_for("jane@example.com")
    message = receipt.message
    assert receipt.mail_from == FROM
    assert message["From"].addresses[0].display_name == "Acme Coffee"
    assert message["Reply-To"] == "help@acme.example"
    assert message["Subject"] == "Your receipt from Acme Coffee"
    for body in (receipt.text, receipt.html):
        assert "$25.99 USD" in body and "Visa ending in 4242" in body
        assert payment["id"] in body and "Order 1001" in body
        assert "4242424242424242" not in body

    refund = stack.api("POST", f"/api/v1/payments/{payment['id']}/refund", {"amount": "5.00"})
    assert refund.status == 200, refund.body
    _, refund_mail = smtp.wait_for("jane@example.com", count=2)
    assert refund_mail.message["Subject"] == "Your refund from Acme Coffee"
    assert "$5.00 USD" in refund_mail.text and refund.data["refunds"][0]["id"] in refund_mail.text

    listed = stack.api("GET", f"/api/v1/notifications?object_id={payment['id']}")
    assert sorted((n["kind"], n["status"]) for n in listed.data) == [
        ("payment_receipt", "sent"),
        ("refund_receipt", "sent"),
    ]
    time.sleep(1)
    assert len(smtp.server.to("jane@example.com")) == 2  # once each, however the worker acks


def test_failed_subscription_charge_says_when_it_is_retried(stack, smtp):
    reply = stack.api(
        "POST",
        "/api/v1/subscriptions",
        {
            "customer_id": "cust_dunning",
            "plan_id": "gold",
            "amount": "19.00",
            "currency": "USD",
            "billing_cycle": "monthly",
            "card_token": "tok_declined",
            "customer_email": "dunning@example.com",
        },
    )
    assert reply.status == 201, reply.body
    result = stack.manage("bill_subscriptions", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    (notice,) = smtp.wait_for("dunning@example.com")
    retry_on = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    assert notice.message["Subject"] == "Your payment to Acme Coffee failed"
    assert f"We will try again on {retry_on}." in notice.text
    assert "$19.00 USD" in notice.text


def test_smtp_down_does_not_slow_the_api_and_retries_deliver_once_it_is_back(stack, smtp):
    def purchase(email: str) -> tuple[int, float]:
        body = {"amount": "3.00", "currency": "USD", "card_token": "tok_visa", "customer_email": email}
        reply = stack.api("POST", "/api/v1/payments", body)
        return reply.status, reply.elapsed

    up = [purchase(f"up{i}@example.com") for i in range(10)]
    smtp.stop()
    down = [purchase(f"down{i}@example.com") for i in range(10)]
    assert all(status == 201 for status, _ in up + down)
    up_median = statistics.median(t for _, t in up)
    down_median = statistics.median(t for _, t in down)
    log(f"API latency with SMTP up {up_median * 1000:.0f} ms, down {down_median * 1000:.0f} ms (median of 10)")
    assert down_median < up_median * 2 + 0.05

    def tried_down() -> list[dict]:
        rows = stack.api("GET", "/api/v1/notifications?status=pending&limit=100").data or []
        return [n for n in rows if n["recipient"].startswith("down") and n["attempt_count"] >= 1]

    pending = wait_until(lambda: len(tried_down()) >= 10 and tried_down(), 30, what="a first failed attempt each")
    assert all("SMTP unavailable" in n["last_error"] for n in pending), [n["last_error"] for n in pending]
    smtp.start()
    for i in range(10):
        smtp.wait_for(f"down{i}@example.com", timeout=90)
    retried = stack.api("GET", "/api/v1/notifications?status=sent&limit=100").data
    attempts = [n["attempt_count"] for n in retried if n["recipient"].startswith("down")]
    log(f"retries exercised: {sum(a - 1 for a in attempts)} over {len(attempts)} notifications")
    assert len(attempts) == 10 and all(a >= 2 for a in attempts)


def test_sender_throughput(stack, smtp):
    count = 60
    started = time.monotonic()

    def purchase(i: int) -> int:
        body = {"amount": "2.00", "currency": "USD", "card_token": "tok_visa", "customer_email": f"load{i}@example.com"}
        return stack.api("POST", "/api/v1/payments", body).status

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(purchase, range(count)))
    api_done = time.monotonic() - started
    assert statuses == [201] * count
    wait_until(
        lambda: sum(1 for m in smtp.server.messages if m.rcpt_tos[0].startswith("load")) >= count or None,
        120,
        what="all receipts",
    )
    total = time.monotonic() - started
    log(
        f"throughput: {count} receipts through the worker in {total:.1f} s ({count / total:.1f}/s, "
        f"API calls done after {api_done:.1f} s), 2 prefork processes"
    )
    assert sum(1 for m in smtp.server.messages if m.rcpt_tos[0].startswith("load")) == count
