"""Delivering recorded events to merchant endpoints: one attempt at a time (claimed atomically,
HMAC-signed, the same bytes every time), retries on a schedule with a final failed state, and
manual redelivery of a delivery or of a whole event."""

from __future__ import annotations

import json
import logging
import random
import time
from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from core.tasks import enqueue_on_commit, task_send_later, tasks_run_eagerly
from core.text import recordable

from .. import signing, transport
from ..metrics import WEBHOOK_DELIVERIES
from ..models import DeliveryAttempt, Event, EventDelivery, WebhookEndpoint

logger = logging.getLogger("easypay.webhooks")

USER_AGENT = "EasyPay-Webhooks/1"
# The task that makes one attempt (webhooks.tasks.delivery_attempt), by name: tasks import services.
DELIVERY_TASK = "webhooks.tasks.delivery_attempt"


def _jittered(seconds: float) -> float:
    return seconds * random.uniform(0.9, 1.1)


def _enqueue_deliveries_on_commit(delivery_ids: list) -> None:
    # A broker outage must not fail the request that recorded the event (its money already moved):
    # the delivery rows are committed and `deliveries_retry_due` sends any that were not enqueued.
    for delivery_id in delivery_ids:
        enqueue_on_commit(DELIVERY_TASK, str(delivery_id))


def event_body(event: Event) -> bytes:
    """The exact bytes POSTed (and signed) for ``event``: the same on every attempt."""
    return json.dumps(event.as_payload(), cls=DjangoJSONEncoder, separators=(",", ":")).encode("utf-8")


def _signing_secrets(endpoint: WebhookEndpoint, now) -> list[str]:
    secrets_ = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > now:
        secrets_.append(endpoint.previous_secret)
    return secrets_


def _retry_delay(*, attempts_in_schedule: int) -> float | None:
    """Seconds until the next attempt after ``attempts_in_schedule`` failed ones, or None when done."""
    schedule = settings.WEBHOOK_RETRY_SCHEDULE_SECONDS
    index = attempts_in_schedule - 1
    if index >= len(schedule):
        return None
    return _jittered(schedule[index])


def _lease_seconds() -> float:
    """How long a claimed attempt is reserved for its worker before anyone may take it again."""
    return settings.WEBHOOK_TIMEOUT_SECONDS * 3 + 30


def delivery_attempt_run(*, delivery_id) -> EventDelivery | None:
    """Make the next attempt of a delivery if it is due; safe to call any number of times at once.

    The attempt is claimed with a conditional update on ``attempt_count`` (only one caller wins) that
    also pushes ``next_attempt_at`` out by a lease, so a worker killed mid-attempt is picked up again
    by ``deliveries_retry_due`` once the lease ends. A succeeded or failed delivery is never sent.
    """
    now = timezone.now()
    delivery = EventDelivery.objects.select_related("endpoint", "event").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != EventDelivery.Status.PENDING:
        return delivery
    if delivery.next_attempt_at is not None and delivery.next_attempt_at > now:
        return delivery  # not due yet, or another worker holds the lease
    endpoint = delivery.endpoint
    if not endpoint.is_active or endpoint.deleted_at is not None:
        skipped = EventDelivery.objects.filter(pk=delivery.pk, status=EventDelivery.Status.PENDING).update(
            status=EventDelivery.Status.FAILED,
            last_error="The endpoint is disabled or deleted.",
            next_attempt_at=None,
            completed_at=now,
            updated_at=now,
        )
        if skipped:
            WEBHOOK_DELIVERIES.labels(result="skipped").inc()
        return EventDelivery.objects.filter(pk=delivery.pk).first()

    attempt_number = delivery.attempt_count + 1
    claimed = (
        EventDelivery.objects.filter(pk=delivery.pk, status=EventDelivery.Status.PENDING)
        .filter(attempt_count=delivery.attempt_count)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(
            attempt_count=attempt_number,
            next_attempt_at=now + timedelta(seconds=_lease_seconds()),
            updated_at=now,
        )
    )
    if not claimed:
        return EventDelivery.objects.filter(pk=delivery.pk).first()

    body = event_body(delivery.event)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "EasyPay-Signature": signing.easypay_signature_header(_signing_secrets(endpoint, now), timestamp, body),
        "EasyPay-Event-Id": delivery.event_id,
        "EasyPay-Event-Type": delivery.event.type,
        "EasyPay-Delivery-Id": str(delivery.pk),
        "EasyPay-Delivery-Attempt": str(attempt_number),
    }
    result = transport.post(url=endpoint.url, body=body, headers=headers, timeout=settings.WEBHOOK_TIMEOUT_SECONDS)
    return _delivery_record_outcome(delivery=delivery, endpoint=endpoint, attempt_number=attempt_number, result=result)


def _delivery_record_outcome(
    *, delivery: EventDelivery, endpoint: WebhookEndpoint, attempt_number: int, result: transport.SendResult
) -> EventDelivery | None:
    done = timezone.now()
    DeliveryAttempt.objects.create(
        delivery=delivery,
        attempt_number=attempt_number,
        url=endpoint.url,
        status_code=result.status_code,
        latency_ms=result.latency_ms,
        # The receiver's reply is recorded text (core.text): a reply no column can hold must not make
        # the attempt unsaveable, or the delivery would stay pending and be sent again forever.
        response_body=recordable(result.response_body, transport.MAX_RESPONSE_BYTES),
        error=recordable(result.error, 2000),
        succeeded=result.succeeded,
    )
    last_error = "" if result.succeeded else recordable(result.error or f"HTTP {result.status_code}", 2000)
    mine = EventDelivery.objects.filter(
        pk=delivery.pk, status=EventDelivery.Status.PENDING, attempt_count=attempt_number
    )
    delay = None
    if result.succeeded:
        updated = mine.update(
            status=EventDelivery.Status.SUCCEEDED,
            last_status_code=result.status_code,
            last_error="",
            next_attempt_at=None,
            completed_at=done,
            updated_at=done,
        )
        outcome = "succeeded"
    else:
        delay = _retry_delay(attempts_in_schedule=attempt_number - delivery.schedule_offset)
        if delay is None:
            updated = mine.update(
                status=EventDelivery.Status.FAILED,
                last_status_code=result.status_code,
                last_error=last_error,
                next_attempt_at=None,
                completed_at=done,
                updated_at=done,
            )
            outcome = "failed"
        else:
            updated = mine.update(
                last_status_code=result.status_code,
                last_error=last_error,
                next_attempt_at=done + timedelta(seconds=delay),
                updated_at=done,
            )
            outcome = "retrying"
    if updated:
        WEBHOOK_DELIVERIES.labels(result=outcome).inc()
        if outcome == "retrying" and delay is not None:
            _schedule_retry(delivery.pk, delay)
    logger.info(
        "webhook delivery attempt",
        extra={
            "delivery_id": str(delivery.pk),
            "event_id": delivery.event_id,
            "attempt": attempt_number,
            "status_code": result.status_code,
            "outcome": outcome,
        },
    )
    return EventDelivery.objects.filter(pk=delivery.pk).first()


def _schedule_retry(delivery_id, delay: float) -> None:
    """With a real broker, schedule the retry with a countdown. Eagerly (tests, `make run` without
    Redis) a countdown would run at once and recurse, so ``next_attempt_at`` alone carries it and the
    every-minute ``deliveries_retry_due`` sweep sends it. Delays beyond the broker's visibility timeout
    are left to the sweep too (Redis would redeliver such long countdowns early)."""
    if tasks_run_eagerly():
        return
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    if delay >= visibility:
        return
    task_send_later(DELIVERY_TASK, str(delivery_id), countdown=delay)


def deliveries_due(*, limit: int = 500) -> list:
    """Ids of pending deliveries whose next attempt is due (including expired leases)."""
    return list(
        EventDelivery.objects.filter(status=EventDelivery.Status.PENDING, next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def delivery_redeliver(*, delivery: EventDelivery) -> EventDelivery:
    """Send a delivery again now: a finished one starts a fresh retry schedule; a pending one is
    brought forward. The event id stays the same."""
    now = timezone.now()
    with transaction.atomic():
        row = EventDelivery.objects.select_for_update().get(pk=delivery.pk)
        if row.status == EventDelivery.Status.PENDING:
            row.next_attempt_at = now  # bring the next attempt forward
        else:
            row.status = EventDelivery.Status.PENDING
            row.schedule_offset = row.attempt_count
            row.next_attempt_at = now
            row.completed_at = None
        row.save(update_fields=["status", "schedule_offset", "next_attempt_at", "completed_at", "updated_at"])
        _enqueue_deliveries_on_commit([row.pk])
    return EventDelivery.objects.select_related("endpoint", "event").get(pk=row.pk)


def event_redeliver(*, event: Event) -> list[EventDelivery]:
    """Send an event again to every active endpoint of its merchant that subscribes to its type
    (creating the delivery for endpoints added since)."""
    out = []
    endpoints = [
        e for e in WebhookEndpoint.objects.active().filter(merchant_id=event.merchant_id) if e.subscribes_to(event.type)
    ]
    for endpoint in endpoints:
        delivery = EventDelivery.objects.filter(event=event, endpoint=endpoint).first()
        if delivery is None:
            try:
                with transaction.atomic():
                    delivery = EventDelivery.objects.create(
                        event=event, endpoint=endpoint, next_attempt_at=timezone.now()
                    )
                    _enqueue_deliveries_on_commit([delivery.pk])
            except IntegrityError:
                delivery = EventDelivery.objects.get(event=event, endpoint=endpoint)
            out.append(EventDelivery.objects.get(pk=delivery.pk))
        else:
            out.append(delivery_redeliver(delivery=delivery))
    return out
