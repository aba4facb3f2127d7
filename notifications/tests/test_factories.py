"""The notifications factory makes distinct messages: each gets its own dedupe key."""

import pytest

from notifications.models import Notification
from notifications.tests.factories import NotificationFactory

pytestmark = pytest.mark.django_db


def test_two_notifications_do_not_collide_on_the_dedupe_constraint():
    first, second = NotificationFactory(), NotificationFactory()
    assert first.dedupe_key != second.dedupe_key
    assert Notification.objects.filter(status=Notification.Status.PENDING).count() == 2
