"""Every merchant list reads its page straight off an index in the list's own order (issue #18).

The lists are ``WHERE merchant_id = ? ORDER BY created_at DESC, id DESC LIMIT n`` (core.pagination).
With an index on (merchant, -created_at) only, PostgreSQL's planner, misled by statistics that
predate a burst of inserts, read every row of the merchant and sorted them: 7 ms per page at 16,000
payments, growing with the merchant. The plans below are asked for right after such a burst
(no ANALYZE), and must not sort.
"""

from __future__ import annotations

import pytest
from django.db import connection

from accounts.tests.factories import MerchantFactory
from audit.models import AuditLog
from core.pagination import CursorPagination
from notifications.models import Notification
from notifications.tests.factories import NotificationFactory
from payments.models import Payment
from payments.tests.factories import PaymentFactory
from subscriptions.models import Subscription
from subscriptions.tests.factories import SubscriptionFactory
from webhooks.models import Event
from webhooks.tests.factories import EventFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

LISTED = [Payment, Subscription, Event, Notification, AuditLog]
BUILD = {
    Payment: lambda merchant: PaymentFactory.build(merchant=merchant, amount="1.00", currency="USD"),
    Subscription: lambda merchant: SubscriptionFactory.build(merchant=merchant),
    Event: lambda merchant: EventFactory.build(merchant=merchant),
    Notification: lambda merchant: NotificationFactory.build(merchant=merchant),
    AuditLog: lambda merchant: AuditLog(merchant=merchant, service_name="api", action="payment.list"),
}
ROWS_PER_MERCHANT = 300


def _plan(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.parametrize("model", LISTED, ids=[m.__name__ for m in LISTED])
def test_a_merchant_list_page_is_an_index_scan_without_a_sort(model):
    merchant = MerchantFactory()
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {model._meta.db_table}")  # statistics of an empty table, then rows arrive
    others = [MerchantFactory() for _ in range(3)]
    # Rows the statistics do not know of: the planner believes there are none.
    rows = [BUILD[model](owner) for owner in (merchant, *others) for _ in range(ROWS_PER_MERCHANT)]
    model.objects.bulk_create(rows, batch_size=500)

    page = model.objects.filter(merchant=merchant).order_by(*CursorPagination.ordering)[:21]
    plan = _plan(page)

    assert "Index Scan" in plan, plan
    assert "Sort" not in plan, plan
    assert len(list(page)) == 21
