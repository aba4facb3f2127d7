"""Writes for webhooks: recording events (the outbox) and delivering them to merchant endpoints,
managing those endpoints, and receiving and processing Authorize.Net notifications."""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from core.exceptions import AuthenticationFailed, InvalidState, ValidationFailed
from core.tasks import enqueue_on_commit
from core.text import json_depth_exceeds, recordable, recordable_bytes, recordable_json
from notifications.services import notifications_for_event

from . import signing, transport, urlguard
from .metrics import WEBHOOK_DELIVERIES, WEBHOOK_INBOUND
from .models import (
    DeliveryAttempt,
    Event,
    EventDelivery,
    EventSequence,
    InboundEvent,
    WebhookEndpoint,
    new_endpoint_secret,
)

logger = logging.getLogger("easypay.webhooks")

EVENT_TYPES = (
    "payment.authorized",
    "payment.captured",
    "payment.declined",
    "payment.failed",
    "payment.held",
    "payment.refunded",
    "payment.partially_refunded",
    "payment.voided",
    "payment.settled",
    "subscription.created",
    "subscription.updated",
    "subscription.paused",
    "subscription.resumed",
    "subscription.cancelled",
    "subscription.payment_succeeded",
    "subscription.payment_failed",
    "subscription.past_due",
)

# Authorize.Net's notification types (design/authorize-net.md section 4).
ANET_EVENT_TYPES = (
    "net.authorize.payment.authcapture.created",
    "net.authorize.payment.authorization.created",
    "net.authorize.payment.capture.created",
    "net.authorize.payment.priorAuthCapture.created",
    "net.authorize.payment.refund.created",
    "net.authorize.payment.void.created",
    "net.authorize.payment.fraud.held",
    "net.authorize.payment.fraud.approved",
    "net.authorize.payment.fraud.declined",
    "net.authorize.customer.created",
    "net.authorize.customer.updated",
    "net.authorize.customer.deleted",
    "net.authorize.customer.paymentProfile.created",
    "net.authorize.customer.paymentProfile.updated",
    "net.authorize.customer.paymentProfile.deleted",
    "net.authorize.customer.subscription.created",
    "net.authorize.customer.subscription.updated",
    "net.authorize.customer.subscription.suspended",
    "net.authorize.customer.subscription.terminated",
    "net.authorize.customer.subscription.cancelled",
    "net.authorize.customer.subscription.expiring",
    "net.authorize.customer.subscription.expired",
    "net.authorize.customer.subscription.failed",
)

USER_AGENT = "EasyPay-Webhooks/1"
# Headers never stored with an inbound notification.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key", "x-csrftoken"})


def _is_eager() -> bool:
    from config.celery import app

    return bool(app.conf.task_always_eager)


def _jittered(seconds: float) -> float:
    return seconds * random.uniform(0.9, 1.1)


# --- Events and their fan-out -------------------------------------------------------------------


def event_sequence_next(*, object_key: str) -> int:
    """The next sequence number of ``object_key``'s events (1 for its first), in one statement.

    ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` (PostgreSQL, SQLite 3.35+) locks the counter row
    until the caller's transaction ends: a concurrent change of the same object waits for this one to
    commit or roll back, so numbers follow commit order and a rolled-back change gives its number back.
    """
    table = connection.ops.quote_name(EventSequence._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (object_key, last) VALUES (%s, 1) "  # noqa: S608 (table name from the model)
            f"ON CONFLICT (object_key) DO UPDATE SET last = {table}.last + 1 RETURNING last",
            [object_key],
        )
        return int(cursor.fetchone()[0])


def event_record(*, merchant_id, event_type: str, data: dict[str, Any]) -> Event:
    """Record an event inside the caller's transaction (call it where the state changes).

    ``data`` is the object exactly as the API returns it. One delivery row per active endpoint of the
    merchant that subscribes to the type is written in the same transaction (so a rolled-back change
    sends nothing and a crash after commit loses nothing), and the first attempts are enqueued once it
    commits.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("event_record must run inside the transaction that changes the state")
    object_key = f"{event_type.split('.', 1)[0]}:{data.get('id', '')}"[:100]
    event = Event.objects.create(
        merchant_id=merchant_id,
        type=event_type,
        data=data,
        object_key=object_key,
        sequence=event_sequence_next(object_key=object_key),
    )
    now = timezone.now()
    deliveries = [
        EventDelivery(event=event, endpoint_id=endpoint_id, next_attempt_at=now)
        for endpoint_id, events in _active_endpoints(merchant_id)
        if "*" in events or event_type in events
    ]
    if deliveries:
        EventDelivery.objects.bulk_create(deliveries)
        _enqueue_deliveries_on_commit([d.pk for d in deliveries])
    # The customer's receipts and notices come from the same events, queued in this transaction.
    notifications_for_event(event=event)
    return event


# The merchant's active endpoints (id, subscribed types), cached so recording an event costs no
# SELECT. Every endpoint write goes through the services below, which replace the entry with a
# "stale" marker before their change and again once it commits. While the marker is there (and on any
# miss) the list is read from the database, and a reader stores what it read only with ``add`` (set
# if absent): a reader that read the old rows just before a change commits can never overwrite the
# marker with them. So a new or re-activated endpoint is never hidden, and a deactivated one gets no
# new deliveries once its change commits (one recorded concurrently is skipped when attempted).
_ENDPOINTS_CACHE_SECONDS = 60
_ENDPOINTS_STALE = "stale"
_ENDPOINTS_STALE_SECONDS = 120


def _endpoints_cache_key(merchant_id) -> str:
    return f"webhooks:endpoints:v2:{merchant_id}"


def _active_endpoints(merchant_id) -> list:
    key = _endpoints_cache_key(merchant_id)
    cached = cache.get(key)
    if cached is not None and cached != _ENDPOINTS_STALE:
        return cached["rows"]
    rows = [
        (str(pk), tuple(events))
        for pk, events in WebhookEndpoint.objects.active().filter(merchant_id=merchant_id).values_list("pk", "events")
    ]
    if cached is None:
        # Wrapped: django-prometheus's in-process cache answers None for a falsy value such as [].
        cache.add(key, {"rows": rows}, _ENDPOINTS_CACHE_SECONDS)
    return rows


def _endpoints_cache_invalidate(merchant_id) -> None:
    """Mark the merchant's endpoint list stale now and again once the caller's transaction commits."""
    key = _endpoints_cache_key(merchant_id)
    cache.set(key, _ENDPOINTS_STALE, _ENDPOINTS_STALE_SECONDS)
    transaction.on_commit(lambda: cache.set(key, _ENDPOINTS_STALE, _ENDPOINTS_STALE_SECONDS))


def _enqueue_deliveries_on_commit(delivery_ids: list) -> None:
    from .tasks import delivery_attempt

    # A broker outage must not fail the request that recorded the event (its money already moved):
    # the delivery rows are committed and `deliveries_retry_due` sends any that were not enqueued.
    for delivery_id in delivery_ids:
        enqueue_on_commit(delivery_attempt, str(delivery_id))


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
    if _is_eager():
        return
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    if delay >= visibility:
        return
    from .tasks import delivery_attempt

    delivery_attempt.apply_async(args=[str(delivery_id)], countdown=delay)


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


# --- Endpoints ----------------------------------------------------------------------------------


def _validated_events(events: list[str]) -> list[str]:
    if not isinstance(events, list) or not events:
        raise ValidationFailed(details={"events": ['Give at least one event type, or ["*"].']})
    unknown = [e for e in events if e != "*" and e not in EVENT_TYPES]
    if unknown:
        raise ValidationFailed(details={"events": [f"Unknown event type: {e!r}." for e in unknown]})
    if "*" in events:
        return ["*"]
    return list(dict.fromkeys(events))


def _validated_url(url: str) -> str:
    try:
        urlguard.validate_for_save(url)
    except urlguard.UnsafeURL as exc:
        raise ValidationFailed(details={"url": [str(exc)]}) from None
    return url


@dataclass(frozen=True)
class EndpointWithSecret:
    endpoint: WebhookEndpoint
    secret: str


def endpoint_create(
    *, merchant, url: str, events: list[str], description: str = "", is_active: bool = True
) -> EndpointWithSecret:
    url = _validated_url(url)
    events = _validated_events(events)
    with transaction.atomic():
        # Serialise creations per merchant so the endpoint cap holds under concurrency.
        type(merchant).objects.select_for_update().filter(pk=merchant.pk).first()
        existing = WebhookEndpoint.objects.live().filter(merchant=merchant).count()
        if existing >= settings.WEBHOOK_MAX_ENDPOINTS_PER_MERCHANT:
            raise ValidationFailed(
                f"A merchant can have at most {settings.WEBHOOK_MAX_ENDPOINTS_PER_MERCHANT} webhook endpoints.",
                details={"url": ["Too many webhook endpoints."]},
            )
        _endpoints_cache_invalidate(merchant.pk)
        endpoint = WebhookEndpoint.objects.create(
            merchant=merchant, url=url, events=events, description=description, is_active=is_active
        )
    return EndpointWithSecret(endpoint=endpoint, secret=endpoint.secret)


def endpoint_update(*, endpoint: WebhookEndpoint, **changes) -> WebhookEndpoint:
    allowed = {"url", "events", "description", "is_active"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"cannot change {sorted(unknown)}")
    if "url" in changes:
        changes["url"] = _validated_url(changes["url"])
    if "events" in changes:
        changes["events"] = _validated_events(changes["events"])
    for field, value in changes.items():
        setattr(endpoint, field, value)
    with transaction.atomic():
        _endpoints_cache_invalidate(endpoint.merchant_id)
        endpoint.save(update_fields=[*changes, "updated_at"])
    return endpoint


def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Soft delete: no more deliveries, gone from the API; pending deliveries end as failed."""
    now = timezone.now()
    with transaction.atomic():
        _endpoints_cache_invalidate(endpoint.merchant_id)
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False, deleted_at=now, updated_at=now)
        EventDelivery.objects.filter(endpoint=endpoint, status=EventDelivery.Status.PENDING).update(
            status=EventDelivery.Status.FAILED,
            last_error="The endpoint was deleted.",
            next_attempt_at=None,
            completed_at=now,
            updated_at=now,
        )


def endpoint_rotate_secret(*, endpoint: WebhookEndpoint, grace_hours: float | None = None) -> EndpointWithSecret:
    """A new secret signs from now on; the old one keeps signing too (a second ``v1``) for the grace
    period (``WEBHOOK_SECRET_ROTATION_GRACE_HOURS``), so receivers can switch without losing events."""
    grace = settings.WEBHOOK_SECRET_ROTATION_GRACE_HOURS if grace_hours is None else grace_hours
    now = timezone.now()
    with transaction.atomic():
        _endpoints_cache_invalidate(endpoint.merchant_id)
        row = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        row.previous_secret = row.secret if grace > 0 else ""
        row.previous_secret_expires_at = now + timedelta(hours=grace) if grace > 0 else None
        row.secret = new_endpoint_secret()
        row.secret_rotated_at = now
        row.save(
            update_fields=["secret", "previous_secret", "previous_secret_expires_at", "secret_rotated_at", "updated_at"]
        )
    return EndpointWithSecret(endpoint=row, secret=row.secret)


# --- Inbound: Authorize.Net notifications --------------------------------------------------------


@dataclass(frozen=True)
class InboundReceipt:
    event: InboundEvent
    duplicate: bool


def _storable_headers(headers: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for name, value in headers.items():
        if name.lower() in SECRET_HEADERS:
            continue
        out[recordable(name, 256)] = recordable(value, 1024)
    return out


# An Authorize.Net notification is a few levels deep; anything much deeper is not one.
INBOUND_MAX_DEPTH = 32


def _notification_json(raw_body: bytes) -> Any:
    """The decoded notification, or None when it is not JSON (or absurdly deep: RecursionError)."""
    try:
        payload = json.loads(raw_body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if json_depth_exceeds(payload, INBOUND_MAX_DEPTH):
        return None
    return payload


def _store_invalid(*, raw_body: bytes, headers, source_ip, signature: str, reason: str) -> None:
    """Keep a truncated forensic row of a rejected notification, at most N an hour (never processed)."""
    since = timezone.now() - timedelta(hours=1)
    recent = InboundEvent.objects.filter(signature_valid=False, created_at__gte=since).count()
    if recent >= settings.WEBHOOK_INBOUND_INVALID_MAX_PER_HOUR:
        return
    limit = settings.WEBHOOK_INBOUND_INVALID_BODY_BYTES
    event_id = ""
    parsed = _notification_json(raw_body) if len(raw_body) <= limit else None
    if isinstance(parsed, dict) and isinstance(parsed.get("notificationId"), str):
        event_id = recordable(parsed["notificationId"], 255)
    # Everything here is recorded text (core.text): stored as received, made storable, never refused.
    InboundEvent.objects.create(
        event_id=event_id,
        raw_body=recordable_bytes(raw_body[:limit], limit),
        headers=_storable_headers(headers),
        source_ip=source_ip,
        signature=recordable(signature, 255),
        signature_valid=False,
        status=InboundEvent.Status.IGNORED,
        error_message=reason,
        metadata={"body_bytes": len(raw_body), "truncated": len(raw_body) > limit},
    )


def inbound_receive(
    *,
    raw_body: bytes,
    headers: Mapping[str, str],
    source_ip: str | None,
    merchant_id=None,
    metadata: dict | None = None,
) -> InboundReceipt:
    """Verify and store an Authorize.Net notification, then process it in the background.

    A bad, missing or truncated ``X-ANET-Signature`` raises ``AuthenticationFailed`` (401) and nothing
    is processed. A repeated ``notificationId`` returns the stored row (``duplicate``) and is not
    processed again: the unique constraint decides, so simultaneous duplicates are processed once.
    """
    signature = headers.get("X-ANET-Signature") or ""
    if len(raw_body) > settings.WEBHOOK_INBOUND_MAX_BODY_BYTES:
        WEBHOOK_INBOUND.labels(result="malformed").inc()
        raise ValidationFailed("The notification body is too large.", details={"body": ["Too large."]})
    if not signing.anet_signature_valid(raw_body, signature, settings.AUTHORIZE_NET_SIGNATURE_KEY):
        WEBHOOK_INBOUND.labels(result="invalid_signature").inc()
        reason = "missing X-ANET-Signature" if not signature else "X-ANET-Signature does not match the body"
        _store_invalid(raw_body=raw_body, headers=headers, source_ip=source_ip, signature=signature, reason=reason)
        raise AuthenticationFailed("The X-ANET-Signature header is missing or invalid.")
    payload = _notification_json(raw_body)
    notification_id = payload.get("notificationId") if isinstance(payload, dict) else None
    if isinstance(notification_id, str):
        # Signed, but still text from outside that is recorded: NUL and lone surrogates are escaped
        # (jsonb and text columns cannot hold them), never a reason to lose the notification.
        payload = recordable_json(payload, max_depth=INBOUND_MAX_DEPTH)
        notification_id = payload["notificationId"]
    if not isinstance(notification_id, str) or not notification_id.strip() or len(notification_id) > 255:
        WEBHOOK_INBOUND.labels(result="malformed").inc()
        raise ValidationFailed(
            "The notification is not a JSON object with a notificationId.",
            details={"notificationId": ["Required."]},
        )
    event_type = payload.get("eventType")
    try:
        with transaction.atomic():
            event = InboundEvent.objects.create(
                event_id=notification_id,
                event_type=event_type[:100] if isinstance(event_type, str) else "",
                source=InboundEvent.Source.AUTHORIZE_NET,
                payload=payload,
                raw_body=recordable_bytes(raw_body),
                headers=_storable_headers(headers),
                source_ip=source_ip,
                signature=recordable(signature, 255),
                signature_valid=True,
                status=InboundEvent.Status.PENDING,
                merchant_id=merchant_id,
                metadata=metadata or {},
            )
            _enqueue_inbound_on_commit(event.pk)
    except IntegrityError:
        existing = InboundEvent.objects.get(
            source=InboundEvent.Source.AUTHORIZE_NET, event_id=notification_id, signature_valid=True
        )
        WEBHOOK_INBOUND.labels(result="duplicate").inc()
        return InboundReceipt(event=existing, duplicate=True)
    WEBHOOK_INBOUND.labels(result="accepted").inc()
    return InboundReceipt(event=InboundEvent.objects.get(pk=event.pk), duplicate=False)


def _enqueue_inbound_on_commit(event_id) -> None:
    from .tasks import inbound_event_process

    enqueue_on_commit(inbound_event_process, str(event_id))


def inbound_sample_build(
    *, event_type: str = "net.authorize.payment.authcapture.created", transaction_id: str | None = None, amount=None
) -> tuple[bytes, dict[str, str]]:
    """A notification as Authorize.Net would send it, signed with our signature key (for the test
    endpoint): compact JSON and its ``X-ANET-Signature`` header."""
    body = {
        "notificationId": str(uuid.uuid4()),
        "eventType": event_type,
        "eventDate": timezone.now().isoformat().replace("+00:00", "Z"),
        "webhookId": str(uuid.uuid5(uuid.NAMESPACE_URL, "easypay:authorize-net:test")),
        "payload": {
            "responseCode": 1,
            "authCode": "TEST00",
            "avsResponse": "Y",
            "authAmount": float(amount) if amount is not None else 1.00,
            "entityName": "transaction",
            "id": transaction_id or str(random.randint(10**10, 10**11 - 1)),
        },
    }
    raw = json.dumps(body, separators=(",", ":")).encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "X-ANET-Signature": signing.anet_signature_header(raw, settings.AUTHORIZE_NET_SIGNATURE_KEY),
        "User-Agent": "EasyPay-Webhook-Test",
    }
    return raw, headers


class _Ignore(Exception):
    """Processing found nothing to do (the reason is stored)."""


def _find_payment(payload: dict):
    """Our payment a transaction notification concerns: by transaction id (payment or refund), by
    invoice number / reference, or, for a transaction we never saw (a refund made elsewhere), by
    asking the processor which transaction it refers to. Gateway errors propagate (retried)."""
    from payments.gateways.authorize_net_notifications import transaction_notice
    from payments.models import Payment, Refund

    notice = transaction_notice(payload)
    if not notice.about_transaction:
        raise _Ignore(f"entity {notice.subject!r} is not handled")
    transaction_id = notice.transaction_id
    references = notice.references

    def by_txn(txn_id: str):
        if not txn_id or txn_id == "0":
            return None
        payment = Payment.objects.filter(processor_transaction_id=txn_id).order_by("-created_at").first()
        if payment is None:
            refund = Refund.objects.select_related("payment").filter(processor_transaction_id=txn_id).first()
            payment = refund.payment if refund else None
        return payment

    def by_reference(ref: str):
        if not ref:
            return None
        payment = Payment.objects.filter(reference=ref).order_by("-created_at").first()
        if payment is None:
            refund = Refund.objects.select_related("payment").filter(reference=ref).first()
            payment = refund.payment if refund else None
        return payment

    payment = by_txn(transaction_id)
    for ref in references:
        payment = payment or by_reference(ref)
    if payment is not None:
        return payment
    if not transaction_id:
        raise _Ignore("the notification names no transaction")
    from payments.gateways import get_gateway

    details = get_gateway().transaction_details(transaction_id=transaction_id)
    if details is not None:
        payment = by_txn(details.ref_transaction_id or "") or by_reference(details.invoice_number or "")
    if payment is None:
        raise _Ignore(f"no payment matches transaction {transaction_id}")
    return payment


def _inbound_retry_delay(retry_count: int) -> float | None:
    schedule = settings.WEBHOOK_INBOUND_RETRY_SCHEDULE_SECONDS
    if retry_count > len(schedule):
        return None
    return _jittered(schedule[retry_count - 1])


def inbound_event_process(*, event_id) -> InboundEvent | None:
    """Apply a stored, signature-valid notification: find the payment and refresh it from the
    processor (whose current state is the truth, so a late or out-of-order notification cannot roll
    anything back). Claimed with a conditional update, so concurrent runs process it once; a worker
    that died mid-way is taken over after ``stale`` minutes."""
    from payments.gateways.base import GatewayError
    from payments.services import payment_refresh_from_processor

    now = timezone.now()
    stale = now - timedelta(minutes=10)
    claimed = (
        InboundEvent.objects.filter(pk=event_id, signature_valid=True)
        .filter(
            Q(status=InboundEvent.Status.PENDING, next_attempt_at__isnull=True)
            | Q(status=InboundEvent.Status.PENDING, next_attempt_at__lte=now)
            | Q(status=InboundEvent.Status.PROCESSING, updated_at__lt=stale)
        )
        .update(status=InboundEvent.Status.PROCESSING, updated_at=now)
    )
    if not claimed:
        return InboundEvent.objects.filter(pk=event_id).first()
    event = InboundEvent.objects.get(pk=event_id)
    fields = {"updated_at": timezone.now()}
    try:
        payment = _find_payment(event.payload if isinstance(event.payload, dict) else {})
        before = payment.status
        payment = payment_refresh_from_processor(payment=payment)
        fields.update(
            status=InboundEvent.Status.PROCESSED,
            processed_at=timezone.now(),
            error_message="",
            next_attempt_at=None,
            merchant_id=payment.merchant_id,
            metadata={
                **event.metadata,
                "payment_id": str(payment.pk),
                "payment_status_before": before,
                "payment_status_after": payment.status,
            },
        )
        result = "processed"
    except _Ignore as exc:
        fields.update(
            status=InboundEvent.Status.IGNORED,
            processed_at=timezone.now(),
            error_message=str(exc),
            next_attempt_at=None,
        )
        result = "ignored"
    except GatewayError as exc:
        retry_count = event.retry_count + 1
        delay = _inbound_retry_delay(retry_count)
        fields.update(retry_count=retry_count, error_message=f"processor lookup failed: {type(exc).__name__}: {exc}")
        if delay is None:
            fields.update(status=InboundEvent.Status.FAILED, next_attempt_at=None)
            result = "failed"
        else:
            fields.update(status=InboundEvent.Status.PENDING, next_attempt_at=timezone.now() + timedelta(seconds=delay))
            result = "retrying"
    except Exception as exc:  # a bug must not loop forever nor break the caller (eager mode)
        logger.exception("inbound webhook processing failed", extra={"inbound_event_id": str(event_id)})
        fields.update(
            status=InboundEvent.Status.FAILED,
            error_message=f"{type(exc).__name__}: {exc}"[:2000],
            next_attempt_at=None,
        )
        result = "failed"
    InboundEvent.objects.filter(pk=event.pk, status=InboundEvent.Status.PROCESSING).update(**fields)
    WEBHOOK_INBOUND.labels(result=result).inc()
    if result == "retrying" and not _is_eager():
        from .tasks import inbound_event_process as task

        task.apply_async(args=[str(event.pk)], countdown=(fields["next_attempt_at"] - timezone.now()).total_seconds())
    return InboundEvent.objects.get(pk=event.pk)


def inbound_events_due(*, limit: int = 200) -> list:
    now = timezone.now()
    lost = now - timedelta(minutes=2)  # enqueued on commit but never run (message lost)
    return list(
        InboundEvent.objects.filter(signature_valid=True)
        .filter(
            Q(status=InboundEvent.Status.PENDING, next_attempt_at__lte=now)
            | Q(status=InboundEvent.Status.PENDING, next_attempt_at__isnull=True, updated_at__lte=lost)
            | Q(status=InboundEvent.Status.PROCESSING, updated_at__lt=now - timedelta(minutes=10))
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )


def inbound_event_replay(*, event: InboundEvent) -> InboundEvent:
    """Process a stored, signature-valid notification again (after a fix, or to re-check the
    processor). Idempotent: it only ever refreshes the payment from the processor's truth; one that
    is already waiting or being processed is left as it is."""
    if not event.signature_valid:
        raise InvalidState("Only notifications with a valid signature can be replayed.")
    with transaction.atomic():
        row = InboundEvent.objects.select_for_update().get(pk=event.pk)
        if row.status not in (InboundEvent.Status.PENDING, InboundEvent.Status.PROCESSING):
            row.status = InboundEvent.Status.PENDING
            row.next_attempt_at = None
            row.error_message = ""
            row.metadata = {**row.metadata, "replayed": int(row.metadata.get("replayed", 0)) + 1}
            row.save(update_fields=["status", "next_attempt_at", "error_message", "metadata", "updated_at"])
            _enqueue_inbound_on_commit(row.pk)
    return InboundEvent.objects.get(pk=event.pk)


def inbound_events_purge(*, now=None) -> int:
    """Delete the forensic rows of rejected (bad-signature) notifications past their retention."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.WEBHOOK_INBOUND_INVALID_RETENTION_DAYS)
    deleted, _ = InboundEvent.objects.filter(signature_valid=False, created_at__lt=cutoff).delete()
    return deleted
