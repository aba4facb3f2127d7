"""Recording events (the outbox): one row per state change, numbered per object, written in the
transaction that changes the state, with its deliveries to the merchant's subscribed endpoints.

Other apps that act on the same events (the customer's notifications) register a listener here
(``event_listener_register``), so the outbox depends on none of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from core import sqlwrite

from ..catalogue import EVENT_TYPES
from ..models import Event, EventDelivery, EventSequence
from .deliveries import _enqueue_deliveries_on_commit
from .endpoints import _active_endpoints

# Called with ``event=`` for every recorded event, inside its transaction, in registration order.
_listeners: list[Callable[..., Any]] = []


def event_listener_register(listener: Callable[..., Any]) -> None:
    """Have ``listener(event=...)`` called for every event recorded from now on, inside the event's
    transaction (what it writes commits or rolls back with the state change). Registered once per
    process, from the listening app's ``AppConfig.ready``; registering the same callable twice is a
    no-op."""
    if listener not in _listeners:
        _listeners.append(listener)


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


def _event_insert(event: Event) -> None:
    """INSERT ``event`` with the next sequence number of its object, which is set on it.

    On PostgreSQL the counter's upsert and the event's INSERT are one statement (a data-modifying
    WITH): one round trip, the same row lock on the counter until the transaction ends."""
    if connection.vendor != "postgresql":
        event.sequence = event_sequence_next(object_key=event.object_key)
        sqlwrite.insert_row(event)
        return
    counter = connection.ops.quote_name(EventSequence._meta.db_table)
    insert, params = sqlwrite.insert_select_statement(event, computed={"sequence": "taken.last"})
    sql = (
        f"WITH taken AS (INSERT INTO {counter} (object_key, last) VALUES (%s, 1) "  # noqa: S608 (names from the models)
        f"ON CONFLICT (object_key) DO UPDATE SET last = {counter}.last + 1 RETURNING last) "
        f"{insert} FROM taken RETURNING {connection.ops.quote_name('sequence')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [event.object_key, *params])
        event.sequence = int(cursor.fetchone()[0])
    sqlwrite.mark_stored([event], Event)


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
    event = Event(merchant_id=merchant_id, type=event_type, data=data, object_key=object_key)
    _event_insert(event)
    now = timezone.now()
    deliveries = [
        EventDelivery(event=event, endpoint_id=endpoint_id, next_attempt_at=now)
        for endpoint_id, events in _active_endpoints(merchant_id)
        if "*" in events or event_type in events
    ]
    if deliveries:
        EventDelivery.objects.bulk_create(deliveries)
        _enqueue_deliveries_on_commit([d.pk for d in deliveries])
    # Listeners (the customer's receipts and notices) act on the same event, in this transaction.
    for listener in _listeners:
        listener(event=event)
    return event
