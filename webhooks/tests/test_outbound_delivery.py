"""Outbound deliveries against a real local HTTP receiver: signing, retries, rotation, redelivery."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from prometheus_client import REGISTRY

from payments.inbound import tasks as inbound_tasks
from webhooks import services, tasks
from webhooks.models import DeliveryAttempt, Event, EventDelivery
from webhooks.tests.factories import EventDeliveryFactory, EventFactory


def verify(header: str, body: bytes, secret: str) -> bool:
    """What a merchant writes: split ``t=..,v1=..`` and compare HMAC-SHA256 of "t.body"."""
    parts = [p.split("=", 1) for p in header.split(",")]
    t = next(v for k, v in parts if k == "t")
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(v, expected) for k, v in parts if k == "v1")


def v1_count(header: str) -> int:
    return sum(1 for p in header.split(",") if p.startswith("v1="))


def make_due(delivery: EventDelivery) -> None:
    EventDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def counter(result: str) -> float:
    return REGISTRY.get_sample_value("easypay_webhook_deliveries_total", {"result": result}) or 0.0


def test_event_is_posted_signed_with_the_endpoint_secret(merchant, receiver, endpoint_for, emit):
    endpoint, secret = endpoint_for(merchant, receiver.url)
    before = counter("succeeded")

    event = emit(merchant, "payment.captured", {"id": "pay_1", "amount": "10.00", "status": "captured"})

    assert len(receiver.requests) == 1
    req = receiver.requests[0]
    assert req.path == "/hooks/easypay"
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["User-Agent"] == "EasyPay-Webhooks/1"
    assert req.headers["EasyPay-Event-Id"] == event.id
    assert req.headers["EasyPay-Event-Type"] == "payment.captured"
    assert verify(req.headers["EasyPay-Signature"], req.body, secret)
    assert not verify(req.headers["EasyPay-Signature"], req.body + b" ", secret)
    assert v1_count(req.headers["EasyPay-Signature"]) == 1
    assert req.json() == {
        "id": event.id,
        "type": "payment.captured",
        "created": event.created_at.isoformat().replace("+00:00", "Z"),
        "sequence": 1,
        "data": {"id": "pay_1", "amount": "10.00", "status": "captured"},
    }
    delivery = EventDelivery.objects.get(event=event, endpoint=endpoint)
    assert delivery.status == "succeeded"
    assert delivery.attempt_count == 1
    assert delivery.last_status_code == 200
    attempt = delivery.attempts.get()
    assert attempt.status_code == 200 and attempt.succeeded and attempt.latency_ms is not None
    assert counter("succeeded") == before + 1


def test_only_subscribed_active_endpoints_of_the_merchant_get_the_event(
    merchant, other_merchant, receiver, endpoint_for, emit
):
    endpoint_for(merchant, receiver.url + "?all", events=["*"])
    endpoint_for(merchant, receiver.url + "?refunds", events=["payment.refunded"])
    endpoint_for(merchant, receiver.url + "?off", events=["*"], is_active=False)
    endpoint_for(other_merchant, receiver.url + "?other", events=["*"])

    emit(merchant, "payment.captured")

    assert [r.path for r in receiver.requests] == ["/hooks/easypay?all"]


def test_rolled_back_state_change_sends_nothing(merchant, receiver, endpoint_for, django_capture_on_commit_callbacks):
    endpoint_for(merchant, receiver.url)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        services.event_record(merchant_id=merchant.pk, event_type="payment.captured", data={"id": "x"})
        raise RuntimeError("the payment change failed")
    assert receiver.requests == []
    assert not Event.objects.exists()
    assert not EventDelivery.objects.exists()


def test_event_record_refuses_unknown_types(merchant):
    with pytest.raises(ValueError), transaction.atomic():
        services.event_record(merchant_id=merchant.pk, event_type="payment.exploded", data={})


@pytest.mark.parametrize("failures", [1, 3])
def test_receiver_failing_n_times_gets_n_plus_1_attempts_with_the_same_event_id(
    failures, merchant, receiver, endpoint_for, emit
):
    endpoint_for(merchant, receiver.url)
    receiver.fail_next(failures, status=503)

    event = emit(merchant)
    delivery = EventDelivery.objects.get(event=event)
    assert delivery.status == "pending"
    first_retry_in = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert 0 < first_retry_in <= 60  # the first retry within a minute

    # Eagerly the retry is not run in-line: the beat sweep sends it once it is due.
    assert tasks.deliveries_retry_due() == 0
    for _ in range(failures):
        make_due(delivery)
        assert tasks.deliveries_retry_due() == 1

    delivery.refresh_from_db()
    assert delivery.status == "succeeded"
    assert delivery.attempt_count == failures + 1
    assert len(receiver.requests) == failures + 1
    assert {r.headers["EasyPay-Event-Id"] for r in receiver.requests} == {event.id}
    assert {r.json()["id"] for r in receiver.requests} == {event.id}
    attempts = list(delivery.attempts.order_by("attempt_number"))
    assert [a.attempt_number for a in attempts] == list(range(1, failures + 2))
    assert [a.status_code for a in attempts] == [503] * failures + [200]
    assert all(len(a.response_body) <= 1024 for a in attempts)
    assert attempts[0].response_body.startswith("receiver says no")


def test_backoff_grows_and_the_delivery_fails_after_the_schedule(settings, merchant, receiver, endpoint_for, emit):
    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = [30, 300, 1800]
    endpoint_for(merchant, receiver.url)
    receiver.default_status = 500
    before = counter("failed")

    event = emit(merchant)
    delivery = EventDelivery.objects.get(event=event)
    waits = []
    for _ in range(3):
        delivery.refresh_from_db()
        waits.append((delivery.next_attempt_at - delivery.updated_at).total_seconds())
        make_due(delivery)
        tasks.deliveries_retry_due()

    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert delivery.attempt_count == 4
    assert delivery.next_attempt_at is None
    assert delivery.last_status_code == 500
    assert len(receiver.requests) == 4
    assert 27 <= waits[0] <= 33 and 270 <= waits[1] <= 330 and 1620 <= waits[2] <= 1980
    assert counter("failed") == before + 1
    # A failed delivery is final: the sweep and the task leave it alone.
    make_due(delivery)
    assert tasks.deliveries_retry_due() == 0
    tasks.delivery_attempt(str(delivery.pk))
    assert len(receiver.requests) == 4


def test_succeeded_delivery_is_never_sent_again(merchant, receiver, endpoint_for, emit):
    endpoint_for(merchant, receiver.url)
    event = emit(merchant)
    delivery = EventDelivery.objects.get(event=event)
    tasks.delivery_attempt(str(delivery.pk))
    make_due(delivery)
    tasks.delivery_attempt(str(delivery.pk))
    assert len(receiver.requests) == 1
    assert DeliveryAttempt.objects.filter(delivery=delivery).count() == 1


def test_attempt_not_yet_due_is_not_sent(merchant, receiver, endpoint_for, emit):
    endpoint_for(merchant, receiver.url)
    receiver.fail_next(1)
    event = emit(merchant)
    delivery = EventDelivery.objects.get(event=event)
    tasks.delivery_attempt(str(delivery.pk))  # a duplicate message before the retry is due
    assert len(receiver.requests) == 1
    assert EventDelivery.objects.get(pk=delivery.pk).attempt_count == 1


def test_timeout_counts_as_a_failed_attempt(settings, merchant, receiver, endpoint_for, emit):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
    endpoint_for(merchant, receiver.url)
    receiver.responses.append(("sleep", 1.0))
    event = emit(merchant)
    delivery = EventDelivery.objects.get(event=event)
    assert delivery.status == "pending"
    attempt = delivery.attempts.get()
    assert attempt.status_code is None
    assert "timed out" in attempt.error
    assert delivery.last_error == attempt.error


def test_redirects_are_not_followed(merchant, receiver, endpoint_for, emit):
    endpoint_for(merchant, receiver.url)
    receiver.responses.append(("redirect", "http://169.254.169.254/latest/meta-data"))
    event = emit(merchant)
    assert len(receiver.requests) == 1
    delivery = EventDelivery.objects.get(event=event)
    assert delivery.status == "pending" and delivery.last_status_code == 302


def test_rotation_sends_both_signatures_during_the_grace_period(merchant, receiver, endpoint_for, emit):
    endpoint, old_secret = endpoint_for(merchant, receiver.url)
    rotated = services.endpoint_rotate_secret(endpoint=endpoint)
    new_secret = rotated.secret
    assert new_secret != old_secret and new_secret.startswith("whsec_")

    emit(merchant)
    header, body = receiver.requests[-1].headers["EasyPay-Signature"], receiver.requests[-1].body
    assert v1_count(header) == 2
    assert verify(header, body, new_secret)
    assert verify(header, body, old_secret)
    sigs = [p[3:] for p in header.split(",") if p.startswith("v1=")]
    t = header.split(",")[0][2:]
    assert sigs[0] == hmac.new(new_secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()

    # After the grace period only the new secret signs.
    type(endpoint).objects.filter(pk=endpoint.pk).update(previous_secret_expires_at=timezone.now() - timedelta(1))
    emit(merchant)
    header, body = receiver.requests[-1].headers["EasyPay-Signature"], receiver.requests[-1].body
    assert v1_count(header) == 1
    assert verify(header, body, new_secret)
    assert not verify(header, body, old_secret)


def test_redeliver_resends_the_same_event_and_starts_a_new_schedule(settings, merchant, receiver, endpoint_for, emit):
    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = [30]
    endpoint_for(merchant, receiver.url)
    receiver.fail_next(2)
    event = emit(merchant)
    delivery = EventDelivery.objects.get(event=event)
    make_due(delivery)
    tasks.deliveries_retry_due()
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.attempt_count == 2

    redelivered = _redeliver(delivery)
    assert redelivered.status == "succeeded"
    assert redelivered.attempt_count == 3
    assert [r.headers["EasyPay-Event-Id"] for r in receiver.requests] == [event.id] * 3


def _redeliver(delivery):
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        services.delivery_redeliver(delivery=delivery)
    return EventDelivery.objects.get(pk=delivery.pk)


def test_disabled_endpoint_gets_no_further_attempts(merchant, receiver, endpoint_for, emit):
    endpoint, _ = endpoint_for(merchant, receiver.url)
    receiver.fail_next(1)
    event = emit(merchant)
    services.endpoint_update(endpoint=endpoint, is_active=False)
    delivery = EventDelivery.objects.get(event=event)
    make_due(delivery)
    tasks.deliveries_retry_due()
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert len(receiver.requests) == 1


def test_worker_killed_mid_attempt_is_taken_over_after_the_lease(merchant, receiver, endpoint_for, emit):
    endpoint, _ = endpoint_for(merchant, receiver.url)
    event = EventFactory(merchant=merchant, type="payment.captured", data={})
    delivery = EventDeliveryFactory(
        event=event, endpoint=endpoint, attempt_count=1, next_attempt_at=timezone.now() + timedelta(seconds=60)
    )  # claimed by a worker that then died
    assert tasks.deliveries_retry_due() == 0
    make_due(delivery)  # the lease ran out
    assert tasks.deliveries_retry_due() == 1
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempt_count == 2
    assert len(receiver.requests) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_never_send_the_same_attempt(merchant, receiver, endpoint_for):
    endpoint, _ = endpoint_for(merchant, receiver.url)
    receiver.responses.append(("sleep", 0.3))
    event = EventFactory(merchant=merchant, type="payment.captured", data={})
    delivery = EventDeliveryFactory(event=event, endpoint=endpoint, next_attempt_at=timezone.now())
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker():
        try:
            barrier.wait(timeout=30)
            services.delivery_attempt_run(delivery_id=delivery.pk)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a worker never finished"
    assert not errors, f"workers raised: {errors!r}"
    assert len(receiver.requests) == 1
    delivery.refresh_from_db()
    assert delivery.attempt_count == 1 and delivery.status == "succeeded"
    assert DeliveryAttempt.objects.filter(delivery=delivery).count() == 1


def test_body_is_identical_on_every_attempt(merchant, receiver, endpoint_for, emit):
    endpoint_for(merchant, receiver.url)
    receiver.fail_next(1)
    event = emit(merchant, data={"amount": "1.50", "nested": {"b": 1, "a": [1, 2]}})
    make_due(EventDelivery.objects.get(event=event))
    tasks.deliveries_retry_due()
    assert receiver.requests[0].body == receiver.requests[1].body
    assert json.loads(receiver.requests[0].body)["data"]["nested"] == {"b": 1, "a": [1, 2]}


def test_unreachable_first_address_falls_back_to_the_next(monkeypatch, merchant, receiver, endpoint_for, emit):
    """A name with several addresses (say IPv6 and IPv4): one refusing connections is skipped."""
    import socket

    port = receiver.server.server_address[1]
    real = socket.getaddrinfo

    def fake_getaddrinfo(host, *args, **kwargs):
        if host == "dual.example.com":
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", port)),  # nothing listens there
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
            ]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    endpoint_for(merchant, f"http://dual.example.com:{port}/hook")
    event = emit(merchant)
    assert len(receiver.requests) == 1
    assert receiver.requests[0].headers["Host"] == f"dual.example.com:{port}"
    assert EventDelivery.objects.get(event=event).status == "succeeded"


def test_connection_refused_is_a_failed_attempt(merchant, endpoint_for, emit):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens
    endpoint_for(merchant, f"http://127.0.0.1:{port}/hook")
    event = emit(merchant)
    delivery = EventDelivery.objects.get(event=event)
    attempt = delivery.attempts.get()
    assert delivery.status == "pending" and attempt.status_code is None
    assert attempt.error.startswith("connection failed")
    assert "Connection refused" in attempt.error


def test_with_a_real_broker_retries_are_scheduled_with_a_countdown(
    monkeypatch, settings, merchant, receiver, endpoint_for, emit
):
    """Worker mode: the retry is a countdown message (the broker, not our code, is replaced here);
    a delay beyond the broker's visibility timeout is left to the every-minute sweep."""
    from config.celery import app

    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = [30, 7200]
    endpoint_for(merchant, receiver.url)
    receiver.default_status = 500
    scheduled = []
    monkeypatch.setattr(
        tasks.delivery_attempt, "apply_async", lambda args, countdown: scheduled.append((args, countdown))
    )
    monkeypatch.setattr(tasks.delivery_attempt, "delay", lambda delivery_id: tasks.delivery_attempt.run(delivery_id))
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        event = emit(merchant)
        delivery = EventDelivery.objects.get(event=event)
        assert len(scheduled) == 1
        assert scheduled[0][0] == [str(delivery.pk)] and 27 <= scheduled[0][1] <= 33

        make_due(delivery)
        tasks.delivery_attempt.run(str(delivery.pk))
    finally:
        app.conf.task_always_eager = eager
    assert len(scheduled) == 1  # 2 h > visibility timeout: the sweep sends it
    assert EventDelivery.objects.get(pk=delivery.pk).next_attempt_at > timezone.now() + timedelta(hours=1)


def test_tasks_ack_late_so_a_killed_worker_redelivers():
    assert tasks.delivery_attempt.acks_late is True
    assert inbound_tasks.inbound_event_process.acks_late is True


def test_metrics_endpoint_exposes_webhook_counters(client, merchant, receiver, endpoint_for, emit):
    endpoint_for(merchant, receiver.url)
    emit(merchant)
    text = client.get("/metrics").content.decode()
    assert 'easypay_webhook_deliveries_total{result="succeeded"}' in text
