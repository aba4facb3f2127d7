"""The cluster's guarantees under faults, through the balancer, each followed by a ledger check.

The tests share one cluster and run in file order: the destructive ones (a web instance killed, a replica
stopped, the Redis primary killed) come last and leave the cluster running on what is left. Figures are
printed (``-s``) and collected in ``FIGURES`` for the report."""

from __future__ import annotations

import signal
import threading
import time
import uuid

import pytest

from scripts.loopback import http_request, wait_until
from tests.cluster.harness import PaymentClients, log

pytestmark = pytest.mark.cluster

REQUIRED_ENV = ("EASYPAY_BASE_URL", "DATABASE_URL", "DATABASE_REPLICA_URLS", "AUTHORIZE_NET_SIGNATURE_KEY")
PROCESS_PREFIXES = ("web", "worker", "beat", "lb", "pg-primary", "pg-replica", "redis", "sentinel", "emulator")
FIGURES: dict[str, object] = {}


def _payment(cluster, port=None, customer="stale-check", key=None):
    body = {"amount": "12.34", "currency": "USD", "card_token": "tok_visa", "customer_id": customer}
    headers = {"Idempotency-Key": key or uuid.uuid4().hex}
    return cluster.api("POST", "/api/v1/payments", body, headers, port=port)


@pytest.mark.cluster_ci
def test_up_writes_env_and_pids_and_answers_through_the_balancer(cluster):
    for name in REQUIRED_ENV:
        assert cluster.env.get(name), name
    assert cluster.env["EASYPAY_BASE_URL"] == f"http://127.0.0.1:{cluster.port}"
    assert len(cluster.replica_urls()) == 2
    names = set(cluster.pids)
    assert all(name.startswith(PROCESS_PREFIXES) for name in names), names
    assert {n for n in names if n.startswith("web")} == {"web1", "web2", "web3"}
    assert [n for n in names if n.startswith("beat")] == ["beat"]
    assert len([n for n in names if n.startswith("pg-replica")]) == 2
    assert len([n for n in names if n.startswith("sentinel")]) == 3
    assert http_request(cluster.port, "GET", "/health/ready").status == 200
    # The replicas stream from the primary.
    assert cluster.sql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")[0][0] == 2
    reply = _payment(cluster)
    assert reply.status == 201, reply.body
    FIGURES["up_seconds"] = round(cluster.up_seconds, 1)


def _replica_payment_scans(cluster) -> int:
    total = 0
    for url in cluster.replica_urls():
        rows = cluster.sql(
            "SELECT COALESCE(seq_scan, 0) + COALESCE(idx_scan, 0) FROM pg_stat_user_tables "
            "WHERE relname = 'payments_payment'",
            url=url,
        )
        total += rows[0][0] if rows else 0
    return total


@pytest.mark.cluster_ci
def test_reads_use_replicas_and_see_every_write_while_replay_is_paused(cluster):
    ports = cluster.web_ports()
    customer = f"stale-{uuid.uuid4().hex[:8]}"
    # Replicas do serve reads: GETs by a merchant whose writes they have replayed scan their tables.
    first = _payment(cluster, customer=customer)
    assert first.status == 201
    wait_until(
        lambda: all(
            cluster.sql("SELECT count(*) FROM payments_payment WHERE id = %s", (first.data["id"],), url=u)[0][0]
            for u in cluster.replica_urls()
        ),
        30,
        what="the replicas to replay the first payment",
    )
    time.sleep(0.3)
    before = _replica_payment_scans(cluster)
    for port in ports:
        for _ in range(5):
            assert cluster.api("GET", "/api/v1/payments?limit=5", port=port).status == 200
    # An idle backend flushes its table statistics within about ten seconds.
    wait_until(lambda: _replica_payment_scans(cluster) > before, 20, interval=1, what="a read on a replica")

    for url in cluster.replica_urls():
        cluster.sql("SELECT pg_wal_replay_pause()", url=url)
    stale: list[str] = []
    operations = {"payment": 0, "refund": 0, "subscription": 0, "update": 0}
    try:
        last_payment = first.data["id"]
        for i in range(100):
            write_port, read_port = ports[i % len(ports)], ports[(i + 1) % len(ports)]
            kind = ("payment", "refund", "subscription", "update")[i % 4]
            operations[kind] += 1
            if kind == "payment":
                reply = _payment(cluster, port=write_port, customer=customer)
                assert reply.status == 201, reply.body
                last_payment = reply.data["id"]
                got = cluster.api("GET", f"/api/v1/payments/{last_payment}", port=read_port)
                listed = cluster.api("GET", f"/api/v1/payments?customer_id={customer}&limit=5", port=read_port)
                if got.status != 200 or last_payment not in [p["id"] for p in listed.data or []]:
                    stale.append(f"{i} payment {got.status}")
            elif kind == "refund":
                reply = cluster.api(
                    "POST", f"/api/v1/payments/{last_payment}/refund", {"amount": "1.00"},
                    {"Idempotency-Key": uuid.uuid4().hex}, port=write_port,
                )  # fmt: skip
                assert reply.status in (200, 201), reply.body
                got = cluster.api("GET", f"/api/v1/payments/{last_payment}", port=read_port)
                if got.status != 200 or got.data["refund_count"] < 1 or got.data["status"] != "partially_refunded":
                    stale.append(f"{i} refund {got.status} {got.data and got.data.get('status')}")
            elif kind == "subscription":
                body = {
                    "customer_id": customer, "plan_id": "gold", "amount": "9.99", "currency": "USD",
                    "billing_cycle": "monthly", "card_token": "tok_visa", "start_date": "2099-01-01",
                }  # fmt: skip
                reply = cluster.api("POST", "/api/v1/subscriptions", body, {"Idempotency-Key": uuid.uuid4().hex},
                                    port=write_port)  # fmt: skip
                assert reply.status == 201, reply.body
                sub_id = reply.data["id"]
                got = cluster.api("GET", f"/api/v1/subscriptions/{sub_id}", port=read_port)
                listed = cluster.api("GET", "/api/v1/subscriptions?limit=5", port=read_port)
                if got.status != 200 or sub_id not in [s["id"] for s in listed.data or []]:
                    stale.append(f"{i} subscription {got.status}")
            else:
                description = f"v{i}"
                reply = cluster.api("PATCH", f"/api/v1/payments/{last_payment}", {"description": description},
                                    port=write_port)  # fmt: skip
                assert reply.status == 200, reply.body
                listed = cluster.api("GET", f"/api/v1/payments?customer_id={customer}&limit=5", port=read_port)
                seen = {p["id"]: p["description"] for p in listed.data or []}
                got = cluster.api("GET", f"/api/v1/payments/{last_payment}", port=read_port)
                if seen.get(last_payment) != description or got.data["description"] != description:
                    stale.append(f"{i} update {seen.get(last_payment)!r} {got.data.get('description')!r}")
        # The replicas really were behind: reading them would have been stale.
        for url in cluster.replica_urls():
            held = cluster.sql("SELECT count(*) FROM payments_payment WHERE customer_id = %s", (customer,), url=url)
            assert held[0][0] == 1, "replay was not paused: the test would prove nothing"
    finally:
        for url in cluster.replica_urls():
            cluster.sql("SELECT pg_wal_replay_resume()", url=url)
    FIGURES["stale_reads"] = len(stale)
    FIGURES["paused_replay_operations"] = operations
    log(f"paused replay: {operations}, stale reads {len(stale)}")
    assert stale == []


def test_killing_a_worker_mid_task_loses_no_webhook(cluster):
    """Long set only. Deliveries wait on a slow receiver; one worker is killed with them in hand; every
    event still reaches the receiver (the leases expire, the sweep sends them again) and each delivery
    ends succeeded."""
    import sys

    from scripts.processes import free_port

    receiver_port = free_port()
    receiver = cluster.start_extra(
        "receiver", [sys.executable, "scripts/webhook_receiver.py", "--port", str(receiver_port)]
    )
    try:
        wait_until(lambda: http_request(receiver_port, "GET", "/health").status == 200, 30, what="the receiver")
        assert http_request(receiver_port, "POST", "/config", {"delay": 4}).status == 200
        endpoint = cluster.api(
            "POST",
            "/api/v1/webhooks",
            {"url": f"http://127.0.0.1:{receiver_port}/hook", "events": ["payment.captured"]},
        )
        assert endpoint.status == 201, endpoint.body
        customer = f"worker-{uuid.uuid4().hex[:8]}"
        payments = [_payment(cluster, customer=customer) for _ in range(6)]
        assert all(p.status == 201 for p in payments)
        wait_until(
            lambda: http_request(receiver_port, "GET", "/stats").body.get("count", 0) >= 1, 60,
            what="a delivery to be in flight",
        )  # fmt: skip
        cluster.kill("worker1")
        killed = time.monotonic()
        events = cluster.sql(
            "SELECT e.id FROM webhooks_event e WHERE e.merchant_id = %s AND e.type = 'payment.captured' "
            "AND e.data->>'customer_id' = %s",
            (cluster.merchant_id, customer),
        )
        assert len(events) == 6

        def all_succeeded():
            rows = cluster.sql(
                "SELECT d.status FROM webhooks_eventdelivery d WHERE d.endpoint_id = %s", (endpoint.data["id"],)
            )
            return len(rows) == 6 and all(status == "succeeded" for (status,) in rows)

        wait_until(all_succeeded, 300, interval=2, what="every delivery to succeed")
        FIGURES["worker_kill_deliveries_recovered_seconds"] = round(time.monotonic() - killed, 1)
        received = {d["event_id"] for d in http_request(receiver_port, "GET", "/deliveries").body}
        assert {str(e) for (e,) in events} <= received
    finally:
        cluster.stop_extra(receiver)


@pytest.mark.cluster_ci
def test_a_second_beat_schedules_nothing_until_the_first_is_gone(cluster):
    from scripts.cluster import Cluster as Manager

    manager = Manager(cluster.dir)
    extra = cluster.start_extra("beat-extra", manager.beat_argv("beat-extra"))
    try:
        wait_until(lambda: "standing by" in cluster.log_text("beat-extra"), 90, what="the second beat to stand by")
        sent_before = cluster.log_text("beat").count("Sending due task")
        # Wait for the first beat to send something (the one-minute sweeps), so a due moment has passed.
        wait_until(
            lambda: cluster.log_text("beat").count("Sending due task") > sent_before, 90, interval=1,
            what="the first beat to send a due task",
        )  # fmt: skip
        assert "Sending due task" not in cluster.log_text("beat-extra")
        cluster.kill("beat")
        killed = time.monotonic()
        wait_until(
            lambda: "taken: scheduling" in cluster.log_text("beat-extra"), 30, what="the second beat to take over"
        )
        FIGURES["beat_takeover_seconds"] = round(time.monotonic() - killed, 1)
    finally:
        cluster.stop_extra(extra)


@pytest.mark.cluster_ci
def test_killing_a_web_instance_under_load_loses_and_doubles_nothing(cluster):
    clients = PaymentClients(cluster, threads=4).start()
    time.sleep(4)
    cluster.kill("web2")
    killed = time.monotonic()
    time.sleep(10)
    clients.finish()
    errors = clients.errors_after(killed)
    after = clients.transport_errors_after(killed)
    FIGURES["web_kill"] = {
        "payments": len(clients.outcomes),
        "retried_attempts": len(errors),
        "balancer_errors": len(after),
        "balancer_errors_stopped_after_seconds": round(max(after) - killed, 2) if after else 0.0,
        "processor_error_outcomes": clients.processor_errors(),
    }
    log(f"web kill: {FIGURES['web_kill']}")
    assert len(clients.outcomes) >= 10
    assert clients.unfinished() == [], "a client never got its payment's outcome"
    assert not after or max(after) - killed < 8, "the balancer kept routing to the dead instance"
    assert clients.ledger_problems() == []
    assert http_request(cluster.web_ports()[1], "GET", "/health/live", timeout=2).status == 0
    assert http_request(cluster.port, "GET", "/health/ready").status == 200


@pytest.mark.cluster_ci
def test_a_stopped_replica_is_skipped(cluster):
    name = "pg-replica2"
    cluster.kill(name, signal.SIGINT)  # the postmaster's fast shutdown
    port = int(cluster.replica_urls()[1].rsplit(":", 1)[1].split("/")[0])
    from scripts.processes import port_open

    wait_until(lambda: not port_open(port), 30, what="the replica to stop")
    for _ in range(30):
        assert cluster.api("GET", "/api/v1/payments?limit=5").status == 200
    assert http_request(cluster.port, "GET", "/health/ready").status == 200
    detailed = wait_until(
        lambda: (
            (r := http_request(cluster.port, "GET", "/health/detailed")).body["data"]["components"]
            .get("database_replicas", {}).get("replicas", {}).get("replica2", {}).get("status") == "unavailable"
            and r
        ),
        10,
        what="/health/detailed to report the stopped replica",
    )  # fmt: skip
    assert detailed.status == 200
    payment = _payment(cluster)
    assert payment.status == 201
    assert cluster.api("GET", f"/api/v1/payments/{payment.data['id']}").status == 200


@pytest.mark.cluster_ci
def test_killing_the_redis_primary_fails_over_and_the_api_keeps_answering(cluster):
    old_master = cluster.redis_master_port()
    assert old_master == cluster.state["redis"]["redis-primary"]
    clients = PaymentClients(cluster, threads=3).start()
    reads: list[tuple[float, int]] = []
    stop = threading.Event()

    def read_loop():
        while not stop.is_set():
            reads.append((time.monotonic(), cluster.api("GET", "/api/v1/payments?limit=5").status))
            time.sleep(0.05)

    reader = threading.Thread(target=read_loop, daemon=True)
    reader.start()
    time.sleep(3)
    cluster.kill("redis-primary")
    killed = time.monotonic()
    wait_until(lambda: cluster.redis_master_port() not in (None, old_master), 60, what="Sentinel to promote")
    promoted = time.monotonic() - killed
    time.sleep(8)
    stop.set()
    reader.join(30)
    clients.finish()
    post_kill_ok = [at for at, status, _ in clients.statuses if at >= killed and status in (201, 402)]
    read_errors = [status for at, status in reads if at >= killed and status >= 500]
    payment_errors = clients.errors_after(killed)
    FIGURES["redis_failover"] = {
        "promoted_after_seconds": round(promoted, 1),
        "first_payment_after_seconds": round(min(post_kill_ok) - killed, 2) if post_kill_ok else None,
        "read_5xx": len(read_errors),
        "payment_attempts_retried": len(payment_errors),
        "payments": len(clients.outcomes),
    }
    log(f"redis failover: {FIGURES['redis_failover']}")
    assert post_kill_ok, "no payment succeeded after the failover"
    assert read_errors == []
    assert clients.ledger_problems() == []
    # Everything resumed without a restart: the cache works on the new master.
    assert http_request(cluster.port, "GET", "/health/ready").status == 200
