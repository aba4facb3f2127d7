"""The buffered writer: rows queued off the request path reach the table in batches, nothing is lost
at shutdown, and a full queue falls back to a synchronous insert."""

from __future__ import annotations

import queue
import time

import pytest

from audit import writer
from audit.models import AuditLog


def _row(n: int) -> AuditLog:
    return AuditLog(service_name="bench", action=f"t.{n}", correlation_id="buffered")


@pytest.mark.django_db(transaction=True)
def test_buffered_rows_are_flushed_by_the_background_thread(settings):
    settings.AUDIT_SYNC_WRITES = False
    settings.AUDIT_FLUSH_INTERVAL_SECONDS = 0.05
    buffer = writer.AuditBuffer()
    for n in range(250):
        buffer.put(_row(n))
    deadline = time.monotonic() + 10
    while AuditLog.objects.filter(correlation_id="buffered").count() < 250 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert AuditLog.objects.filter(correlation_id="buffered").count() == 250
    assert buffer.shutdown() == 0
    assert not buffer._thread.is_alive()


@pytest.mark.django_db(transaction=True)
def test_shutdown_flushes_what_is_still_queued(settings):
    settings.AUDIT_SYNC_WRITES = False
    buffer = writer.AuditBuffer()
    buffer._stop.set()  # the thread will not take anything: shutdown must write it all
    for n in range(5):
        buffer._queue.put_nowait(_row(n))
    assert buffer.shutdown() == 5
    assert AuditLog.objects.filter(correlation_id="buffered").count() == 5


@pytest.mark.django_db(transaction=True)
def test_a_full_queue_writes_synchronously(settings, monkeypatch):
    settings.AUDIT_SYNC_WRITES = False
    buffer = writer.AuditBuffer()
    monkeypatch.setattr(buffer, "_ensure_thread", lambda: None)  # no consumer: the queue stays full
    buffer._queue = queue.Queue(maxsize=1)
    buffer.put(_row(0))
    buffer.put(_row(1))  # no room: written by the caller, never dropped
    assert list(AuditLog.objects.values_list("action", flat=True)) == ["t.1"]
    assert buffer.flush() == 1
    assert AuditLog.objects.count() == 2


@pytest.mark.django_db
def test_inside_a_transaction_rows_are_written_synchronously(settings):
    settings.AUDIT_SYNC_WRITES = False
    # pytest-django wraps this test in a transaction: the row must be visible at once.
    writer.record(_row(7))
    assert AuditLog.objects.filter(action="t.7").exists()
    assert writer.buffer.pending() == 0


@pytest.mark.django_db(transaction=True)
def test_shutdown_writes_the_batch_the_thread_is_still_collecting(settings):
    settings.AUDIT_SYNC_WRITES = False
    settings.AUDIT_FLUSH_INTERVAL_SECONDS = 60  # the thread would hold these rows for a minute
    settings.AUDIT_BATCH_SIZE = 10000
    buffer = writer.AuditBuffer()
    for n in range(3):
        buffer.put(_row(n))
    deadline = time.monotonic() + 30
    while buffer.pending():  # until the writer thread has taken them into its batch
        assert time.monotonic() < deadline, "the writer thread never took the rows"
        time.sleep(0.02)
    assert AuditLog.objects.count() == 0
    started = time.monotonic()
    buffer.shutdown()
    # Written by the shutdown, not by the batch's 60 s interval running out.
    assert time.monotonic() - started < 30
    assert AuditLog.objects.filter(correlation_id="buffered").count() == 3


@pytest.mark.django_db(transaction=True)
def test_one_synchronous_row_outside_a_transaction_is_one_statement(settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.AUDIT_SYNC_WRITES = True
    with CaptureQueriesContext(connection) as queries:
        writer.record(_row(1))
    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["INSERT"]  # no BEGIN/COMMIT around it
    assert AuditLog.objects.filter(correlation_id="buffered", action="t.1").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_refused_single_row_is_kept_in_its_minimal_form(settings):
    settings.AUDIT_SYNC_WRITES = True
    row = _row(2)
    row.user_agent = "nul\x00byte"  # psycopg refuses NUL in a parameter
    row.request_data = {"x": "nul\x00"}
    writer.record(row)
    stored = AuditLog.objects.get(action="t.2")
    assert stored.request_data == {"_unstorable": "The request data could not be stored."}
    assert "\x00" not in stored.user_agent
