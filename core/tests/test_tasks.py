"""enqueue_on_commit: a broker outage never fails the caller; eager mode still surfaces task errors."""

import pytest
from django.db import transaction
from kombu.exceptions import OperationalError

from core.tasks import ENQUEUE_FAILURES, enqueue_on_commit


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
