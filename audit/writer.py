"""Writing audit rows: synchronously, or through an in-process buffer flushed in batches.

A request should not pay a synchronous INSERT for its audit row when that costs throughput, so by
default (``AUDIT_SYNC_WRITES = False``) rows go to a bounded thread-safe queue that one background
thread drains with ``bulk_create`` every ``AUDIT_FLUSH_INTERVAL_SECONDS`` or ``AUDIT_BATCH_SIZE`` rows.
Nothing is lost on a normal shutdown: the queue is flushed at interpreter exit (``atexit``, which
gunicorn workers reach through ``sys.exit``) and by :func:`gunicorn_worker_exit` (a gunicorn
``worker_exit`` hook). When the queue is full the caller writes its row itself (back-pressure, never a
dropped row).

A row written while the caller is inside a database transaction is written synchronously in that
transaction: it must not reference rows another connection cannot see yet, and it rolls back with
the change it describes. (Admin views and tests run inside transactions.)
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, connections, transaction

from .models import AuditLog

logger = logging.getLogger("easypay.audit")


class AuditBuffer:
    def __init__(self) -> None:
        self._queue: queue.Queue[AuditLog] = queue.Queue(maxsize=int(settings.AUDIT_BUFFER_MAX_ROWS))
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._stop = threading.Event()
        self._atexit_registered = False

    # -- producer side -------------------------------------------------------------------------
    def put(self, row: AuditLog) -> None:
        self._ensure_thread()
        try:
            self._queue.put_nowait(row)
        except queue.Full:
            logger.warning("audit buffer full; writing synchronously")
            write_rows([row])

    def pending(self) -> int:
        return self._queue.qsize()

    # -- consumer side -------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        pid = os.getpid()
        if self._thread is not None and self._pid == pid and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._pid == pid and self._thread.is_alive():
                return
            if self._pid != pid:
                # After a fork (gunicorn --preload) the parent's queue and thread do not exist here.
                self._queue = queue.Queue(maxsize=int(settings.AUDIT_BUFFER_MAX_ROWS))
                self._stop = threading.Event()
            self._pid = pid
            self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
            self._thread.start()
            if not self._atexit_registered:
                atexit.register(self.shutdown)
                self._atexit_registered = True

    def _take_batch(self, first: AuditLog, batch_size: int, deadline: float) -> list[AuditLog]:
        """Collect up to ``batch_size`` rows until ``deadline``; a shutdown ends the wait at once (the
        rows held here are written by the caller, never dropped with the thread)."""
        batch = [first]
        while len(batch) < batch_size and not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(self._queue.get(timeout=min(remaining, 0.1)))
            except queue.Empty:
                continue
        return batch

    def _run(self) -> None:
        interval = float(settings.AUDIT_FLUSH_INTERVAL_SECONDS)
        batch_size = int(settings.AUDIT_BATCH_SIZE)
        try:
            while not self._stop.is_set():
                try:
                    first = self._queue.get(timeout=0.5)
                except queue.Empty:
                    continue
                batch = self._take_batch(first, batch_size, time.monotonic() + interval)
                close_old_connections()
                with self._write_lock:
                    write_rows(batch)
                # Hold no idle connection between batches (a test database can be dropped, a
                # pgbouncer slot freed); one connect per flush is cheap next to a batch of inserts.
                connection.close()
        finally:
            connections.close_all()

    def flush(self) -> int:
        """Write everything queued now, in the calling thread; returns how many rows were written."""
        written = 0
        batch_size = int(settings.AUDIT_BATCH_SIZE)
        with self._write_lock:
            while True:
                batch: list[AuditLog] = []
                while len(batch) < batch_size:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                if not batch:
                    return written
                write_rows(batch)
                written += len(batch)

    def shutdown(self) -> int:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=5)
        return self.flush()


def write_rows(rows: list[AuditLog]) -> None:
    """Insert rows in one statement; when the batch fails, row by row, and a row the database still
    refuses is stored in its :func:`minimal_row` form: a batch never loses a row for another's sake,
    and no row is lost for what it holds.

    Each attempt runs in its own savepoint (or transaction; a single row outside one is a single
    autocommitted INSERT), so a refused row never breaks the caller's transaction."""
    if not rows:
        return
    if len(rows) == 1:
        if _insert(rows[0]):
            return
    else:
        try:
            with transaction.atomic():
                AuditLog.objects.bulk_create(rows)
            return
        except (DatabaseError, ValueError):  # psycopg refuses NUL in a parameter with a ValueError
            logger.exception("audit batch insert failed; retrying row by row", extra={"rows": len(rows)})
    for row in rows:
        if len(rows) > 1 and _insert(row):
            continue
        logger.error(
            "audit row refused by the database; storing it without its payloads",
            extra={"audit_action": row.action, "correlation_id": row.correlation_id},
        )
        if not _insert(minimal_row(row)):
            # Last resort: the row goes to the (redacting) log so it is not silently lost.
            logger.error(
                "audit row could not be stored",
                extra={"audit_action": row.action, "correlation_id": row.correlation_id},
            )


def _insert(row: AuditLog) -> bool:
    """One row in one statement. Outside a transaction (a request's synchronous write) the INSERT
    commits by itself: one round trip instead of BEGIN/INSERT/COMMIT, and a refused row leaves nothing
    to roll back; inside one, a savepoint keeps the caller's transaction usable."""
    try:
        if connection.in_atomic_block:
            with transaction.atomic():
                AuditLog.objects.bulk_create([row])
        else:
            row.save(force_insert=True)
        return True
    except (DatabaseError, ValueError):
        return False


def minimal_row(row: AuditLog) -> AuditLog:
    """``row`` keeping who, what, when and the outcome, every text field made storable and the
    request and response payloads replaced by a note (what a database refused is in them)."""
    from core.text import recordable

    def text(name: str) -> str:
        field = AuditLog._meta.get_field(name)
        value = recordable(getattr(row, name) or "", field.max_length)
        return value.encode("ascii", "backslashreplace").decode("ascii")[: field.max_length]

    return AuditLog(
        id=row.id,
        correlation_id=text("correlation_id"),
        service_name=text("service_name"),
        action=text("action"),
        resource_type=text("resource_type"),
        resource_id=text("resource_id"),
        merchant_id=row.merchant_id,
        actor_type=row.actor_type,
        actor_id=text("actor_id"),
        ip_address=row.ip_address,
        user_agent=text("user_agent"),
        request_data={"_unstorable": "The request data could not be stored."},
        response_data={"_unstorable": "The response data could not be stored."},
        status_code=row.status_code,
        duration_ms=row.duration_ms,
        created_at=row.created_at,
    )


buffer = AuditBuffer()


def record(row: AuditLog) -> None:
    """Store one audit row by the configured path (see the module docstring)."""
    if settings.AUDIT_SYNC_WRITES or connection.in_atomic_block:
        write_rows([row])
    else:
        buffer.put(row)


def flush() -> int:
    return buffer.flush()


def gunicorn_worker_exit(server, worker) -> None:
    """gunicorn ``worker_exit`` hook. In ``gunicorn.conf.py``:
    ``from audit.writer import gunicorn_worker_exit as worker_exit``."""
    buffer.shutdown()
