"""enqueue_on_commit: a broker outage never fails the caller; eager mode still surfaces task errors.
Tasks enqueued by name resolve to the registered task (its options and eager mode included)."""

import pytest
from celery import current_app
from django.db import transaction
from kombu.exceptions import OperationalError

from core.tasks import ENQUEUE_FAILURES, enqueue_on_commit, task_named, task_send_later


class _Task:
    """Stands in for a Celery task whose broker is unreachable (what kombu raises on publish)."""

    name = "tests.unreachable"

    def __init__(self, error=None):
        self.error = error
        self.sent = []

    def delay(self, *args):
        if self.error:
            raise self.error
        self.sent.append(args)


@pytest.mark.django_db(transaction=True)
def test_broker_down_is_logged_and_counted_not_raised(settings, caplog):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    task = _Task(OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused."))
    before = ENQUEUE_FAILURES.labels(task=task.name)._value.get()
    with transaction.atomic():
        enqueue_on_commit(task, "row-1")
    assert ENQUEUE_FAILURES.labels(task=task.name)._value.get() == before + 1
    assert "beat sweep will pick it up" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_sent_only_after_commit_and_never_on_rollback(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    task = _Task()
    with transaction.atomic():
        enqueue_on_commit(task, "kept")
        assert task.sent == []
    assert task.sent == [("kept",)]
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue_on_commit(task, "rolled-back")
        raise RuntimeError("abort")
    assert task.sent == [("kept",)]


@pytest.mark.django_db(transaction=True)
def test_eager_mode_lets_task_errors_surface(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    task = _Task(ValueError("bug in the task"))
    with pytest.raises(ValueError), transaction.atomic():
        enqueue_on_commit(task, "x")


_recorded: list = []


@current_app.task(name="tests.core.record_named")
def _record_named(value: str) -> None:
    _recorded.append(value)


def test_a_task_is_found_by_its_name_even_before_its_module_is_imported():
    """Services name their tasks; the worker's task modules are imported on the first miss."""
    task = task_named("webhooks.tasks.delivery_attempt")
    assert task.name == "webhooks.tasks.delivery_attempt"
    assert task.acks_late is True
    assert task_named("webhooks.tasks.inbound_event_process").__module__ == "payments.inbound.tasks"


def test_an_unknown_task_name_is_an_error():
    with pytest.raises(KeyError):
        task_named("tests.core.no_such_task")


@pytest.mark.django_db(transaction=True)
def test_a_task_enqueued_by_name_runs_after_commit_only(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    _recorded.clear()
    with transaction.atomic():
        enqueue_on_commit("tests.core.record_named", "kept")
        assert _recorded == []
    assert _recorded == ["kept"]
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue_on_commit("tests.core.record_named", "rolled-back")
        raise RuntimeError("abort")
    assert _recorded == ["kept"]


@pytest.mark.django_db(transaction=True)
def test_broker_down_for_a_named_task_is_counted_under_its_name(settings, monkeypatch):
    settings.CELERY_TASK_ALWAYS_EAGER = False

    def refuse(*args):
        raise OperationalError("Connection refused.")

    monkeypatch.setattr(_record_named, "delay", refuse)
    before = ENQUEUE_FAILURES.labels(task="tests.core.record_named")._value.get()
    with transaction.atomic():
        enqueue_on_commit("tests.core.record_named", "row-1")
    assert ENQUEUE_FAILURES.labels(task="tests.core.record_named")._value.get() == before + 1


def test_a_scheduled_send_passes_args_and_countdown(monkeypatch):
    sent = []
    monkeypatch.setattr(_record_named, "apply_async", lambda args, countdown: sent.append((args, countdown)))
    task_send_later("tests.core.record_named", "row-2", countdown=30)
    assert sent == [(["row-2"], 30)]


def test_threads_that_all_miss_a_task_at_once_all_find_it():
    """Requests served by threads enqueue at the same moment in a fresh process (make run), before
    the task's module was ever imported there."""
    import sys
    import threading

    from celery import current_app

    import webhooks

    name = "webhooks.tasks.delivery_attempt"
    module, registered = sys.modules.pop("webhooks.tasks"), current_app.tasks.pop(name)
    found, errors = [], []
    barrier = threading.Barrier(8)

    def look_up():
        barrier.wait()
        try:
            found.append(task_named(name).name)
        except Exception as exc:  # the assertion below reports it
            errors.append(exc)

    try:
        threads = [threading.Thread(target=look_up) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.modules["webhooks.tasks"], webhooks.tasks = module, module
        current_app.tasks[name] = registered
    assert errors == []
    assert found == [name] * 8
