"""Writing a notification row and enqueuing its send after commit; resending one as a new row."""

from __future__ import annotations

from django.db import connections, router, transaction
from django.db.models.constants import OnConflict
from django.db.models.sql import InsertQuery
from django.utils import timezone

from core.tasks import enqueue_on_commit

from ..models import Notification

# The task that sends one notification (notifications.tasks.notification_send), by name: tasks import
# services, never the other way round.
SEND_TASK = "notifications.tasks.notification_send"


def notification_queue(
    *,
    merchant_id,
    kind: str,
    channel: str,
    recipient: str,
    object_type: str,
    object_id: str,
    dedupe_key: str,
    context: dict,
    customer_id: str = "",
    event_id: str = "",
    resent_from: Notification | None = None,
) -> Notification | None:
    """Write one notification and enqueue its send on commit; None if it exists already (the
    constraint decides: the INSERT does nothing on a conflict, so the caller's transaction goes on)."""
    row = Notification(
        merchant_id=merchant_id,
        kind=kind,
        channel=channel,
        recipient=recipient[:254],
        customer_id=customer_id[:255],
        object_type=object_type,
        object_id=object_id[:64],
        event_id=event_id or "",
        dedupe_key=dedupe_key[:128],
        context=context,
        resent_from=resent_from,
        next_attempt_at=timezone.now(),
    )
    if not _insert_unless_conflict(row):
        return None
    enqueue_on_commit(SEND_TASK, row.pk)
    return row


def _insert_unless_conflict(row: Notification) -> bool:
    """INSERT ``row`` with ON CONFLICT DO NOTHING (SQLite: INSERT OR IGNORE); whether it was written.

    One statement where a savepoint around ``create()`` catching the IntegrityError took three (a
    receipt is queued in every captured payment's outcome transaction). The id is made here, not by
    the database, so nothing needs to be read back. Only uniqueness is ignored: a CHECK or foreign key
    violation still raises.
    """
    using = router.db_for_write(Notification, instance=row)
    query = InsertQuery(Notification, on_conflict=OnConflict.IGNORE)
    query.insert_values(Notification._meta.local_concrete_fields, [row])
    ((sql, params),) = query.get_compiler(using=using).as_sql()
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        written = cursor.rowcount == 1
    if written:
        row._state.adding, row._state.db = False, using
    return written


def notification_resend(*, notification: Notification) -> Notification:
    """Send the same message again to the same recipient, as a new notification linked to the first."""
    with transaction.atomic():
        count = Notification.objects.filter(resent_from=notification).count()
        row = None
        for n in range(count + 1, count + 50):
            row = notification_queue(
                merchant_id=notification.merchant_id,
                kind=notification.kind,
                channel=notification.channel,
                recipient=notification.recipient,
                customer_id=notification.customer_id,
                object_type=notification.object_type,
                object_id=notification.object_id,
                event_id=notification.event_id,
                dedupe_key=f"resend:{notification.pk}:{n}",
                context=notification.context,
                resent_from=notification,
            )
            if row is not None:
                break
    assert row is not None
    return row
