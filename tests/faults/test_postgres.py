"""PostgreSQL stopped and restarted under load (a PRIVATE cluster: the machine's server is never touched).

While the database is down every API answer must be the contract's ``503 service_unavailable`` JSON
(never an HTML page or a traceback); once it is back the same gunicorn and Celery processes must
recover on their own, and nothing is lost: every charge the processor made is a payment EasyPay knows
(after reconciliation), and every event recorded is delivered.
"""

from __future__ import annotations

import time

import pytest

from tests.faults.helpers import CHARGE_TYPES, Load, is_error_envelope, looks_like_leak, payment_body, unique_amount
from tests.faults.stack import Stack, wait_until

pytestmark = pytest.mark.faults

DOWN_SECONDS = 8


@pytest.fixture(scope="module")
def restart():
    obs: dict = {}
    with Stack(tag="pg", private_postgres=True) as stack:
        first = stack.api("POST", "/api/v1/payments", payment_body(unique_amount()))
        assert first.status == 201, first.body
        obs["gunicorn_workers_before"] = stack.gunicorn_worker_pids()
        obs["celery_pid_before"] = stack.procs.pid("celery")
        load = Load(stack, threads=4, payment_id=first.data["id"]).start()
        time.sleep(3)
        stack.pg.stop("fast")
        obs["down_at"] = time.monotonic()
        time.sleep(1)
        obs["ready_down"] = stack.api("GET", "/health/ready")
        obs["detailed_down"] = stack.api("GET", "/health/detailed")
        time.sleep(DOWN_SECONDS - 1)
        obs["up_at"] = time.monotonic()
        stack.pg.start()
        obs["recovered"] = wait_until(
            lambda: (r := stack.api("POST", "/api/v1/payments", payment_body(unique_amount()))).status == 201 and r,
            60,
            interval=0.5,
            what="a 201 after the restart",
        )
        obs["recovered_after"] = round(time.monotonic() - obs["up_at"], 2)
        time.sleep(3)
        obs["records"] = load.stop()
        obs["gunicorn_workers_after"] = stack.gunicorn_worker_pids()
        obs["celery_alive"] = stack.procs.alive("celery")
        obs["celery_pid_after"] = stack.procs.pid("celery")
        obs["ready_up"] = stack.api("GET", "/health/ready")

        time.sleep(3)  # past PAYMENTS_RECONCILE_AFTER_SECONDS for payments cut off mid-flight
        reconcile = stack.manage("reconcile", "--json")
        assert reconcile.returncode == 0, reconcile.stderr[-2000:]
        try:
            wait_until(
                lambda: stack.sql("SELECT count(*) FROM webhooks_eventdelivery WHERE status = 'pending'")[0][0] == 0,
                90,
                interval=1,
                what="webhook deliveries to drain",
            )
        except TimeoutError:
            pass
        obs["payments"] = stack.sql(
            "SELECT id::text, status, processor_transaction_id, reference FROM payments_payment"
        )
        obs["transactions"] = stack.emulator_transactions()
        obs["deliveries"] = stack.sql("SELECT status, count(*) FROM webhooks_eventdelivery GROUP BY status")
        obs["events"] = stack.sql("SELECT count(*) FROM webhooks_event")[0][0]
        obs["delivery_rows"] = stack.sql("SELECT count(*) FROM webhooks_eventdelivery")[0][0]
    return obs


def _while_down(obs):
    """Requests sent and answered entirely inside the outage (1 s margin after the stop)."""
    return [r for r in obs["records"] if r[0] >= obs["down_at"] + 1 and r[1] <= obs["up_at"]]


def test_while_down_every_answer_is_503_service_unavailable_json(restart):
    down = _while_down(restart)
    needs_db = [(kind, reply) for _, _, kind, reply in down if kind in ("post", "list")]
    assert len(needs_db) >= 10, f"only {len(needs_db)} POST/list requests fell inside the outage"
    bad = [
        (kind, reply.status, reply.error_code, reply.raw[:200])
        for kind, reply in needs_db
        if reply.status != 503 or reply.error_code != "service_unavailable" or not is_error_envelope(reply)
    ]
    assert not bad, bad[:5]


def test_while_down_a_cached_payment_is_still_served_or_503(restart):
    # GET /payments/{id} is answered from the Redis cache (API key snapshot and payment) when it can.
    gets = [reply for _, _, kind, reply in _while_down(restart) if kind == "get"]
    assert gets
    for reply in gets:
        assert reply.status in (200, 503), reply.raw[:200]
        if reply.status == 200:
            assert reply.data["status"] == "captured"
        else:
            assert reply.error_code == "service_unavailable"


def test_no_answer_at_any_time_is_a_traceback_or_html(restart):
    records = restart["records"]
    leaks = [(kind, reply.status, reply.raw[:200]) for _, _, kind, reply in records if looks_like_leak(reply)]
    assert not leaks, leaks[:5]
    transport = [reply.error for _, _, _, reply in restart["records"] if reply.status == 0]
    assert not transport, transport[:5]
    errors = [r for _, _, _, r in restart["records"] if r.status >= 400]
    assert all(is_error_envelope(r) for r in errors)


def test_readiness_is_503_while_down_and_200_after(restart):
    assert restart["ready_down"].status == 503
    assert restart["ready_down"].body["error"]["details"]["database"] == "unavailable"
    assert restart["detailed_down"].status == 503
    assert restart["ready_up"].status == 200


def test_the_same_processes_recover_without_a_restart(restart):
    assert restart["recovered"].data["status"] == "captured"
    assert restart["recovered_after"] < 30
    assert restart["gunicorn_workers_after"] == restart["gunicorn_workers_before"]
    assert restart["celery_alive"] and restart["celery_pid_after"] == restart["celery_pid_before"]
    after = [r for r in restart["records"] if r[0] >= restart["up_at"] + restart["recovered_after"]]
    assert after and all(reply.status in (200, 201) for _, _, _, reply in after)


def test_nothing_lost_every_processor_charge_is_a_known_payment(restart):
    by_txn = {txn: status for _, status, txn, _ in restart["payments"] if txn}
    charges = [tx for tx in restart["transactions"] if tx["transaction_type"] in CHARGE_TYPES]
    orphans = [tx["trans_id"] for tx in charges if tx["trans_id"] not in by_txn]
    assert not orphans, f"charges EasyPay does not know: {orphans}"
    wrong = [(txn, status) for txn, status in by_txn.items() if status != "captured"]
    assert not wrong
    pending = [p for p in restart["payments"] if p[1] == "pending"]
    assert not pending, pending


def test_nothing_lost_every_event_is_delivered(restart):
    assert restart["delivery_rows"] == restart["events"]
    assert dict(restart["deliveries"]) == {"succeeded": restart["events"]}
