"""Every merchant list reads its page straight off an index in the list's own order (issue #18).

The lists are ``WHERE merchant_id = ? ORDER BY created_at DESC, id DESC LIMIT n`` (core.pagination).
With an index on (merchant, -created_at) only, PostgreSQL's planner, misled by statistics that
predate a burst of inserts, read every row of the merchant and sorted them: 7 ms per page at 16,000
payments, growing with the merchant. The plans below are asked for right after such a burst
(no ANALYZE since the table was empty, or none ever), and must not sort: the index carries the order
and the connections' random_page_cost (config/settings/components/database.py) makes the planner
walk it rather than bitmap-scan every row of the merchant and sort them.
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


def _fill(model, merchant) -> None:
    """Rows for ``merchant`` (most of them) and for three other merchants."""
    others = [MerchantFactory() for _ in range(3)]
    rows = [BUILD[model](merchant) for _ in range(ROWS_PER_MERCHANT * 4)]
    rows += [BUILD[model](owner) for owner in others for _ in range(ROWS_PER_MERCHANT // 10)]
    model.objects.bulk_create(rows, batch_size=500)


def _assert_page_read_off_the_index(model, merchant) -> None:
    page = model.objects.filter(merchant=merchant).order_by(*CursorPagination.ordering)[:21]
    plan = _plan(page)
    assert "Index Scan" in plan, plan
    assert "Sort" not in plan, plan
    assert len(list(page)) == 21


@pytest.mark.parametrize("model", LISTED, ids=[m.__name__ for m in LISTED])
def test_a_merchant_list_page_is_an_index_scan_without_a_sort(model):
    """Current statistics (what autovacuum keeps): the index holds the list's exact order."""
    merchant = MerchantFactory()
    _fill(model, merchant)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {model._meta.db_table}")
    _assert_page_read_off_the_index(model, merchant)


@pytest.mark.parametrize("statistics", ["empty-table", "never-analyzed"])
def test_the_payment_list_keeps_its_plan_when_the_statistics_predate_the_rows(statistics):
    """Statistics from before a burst of inserts (autovacuum behind, or off as on the bench machine):
    with PostgreSQL's default random_page_cost the planner bitmap-scanned every payment of the
    merchant and sorted them (24 ms a page at 14,500 payments in the held-out run)."""
    merchant = MerchantFactory()
    table = Payment._meta.db_table
    with connection.cursor() as cursor:
        if statistics == "empty-table":
            cursor.execute(f"ANALYZE {table}")
        else:  # as fresh from its migration
            cursor.execute("DELETE FROM pg_statistic WHERE starelid = %s::regclass", [table])
            cursor.execute("UPDATE pg_class SET reltuples = -1, relpages = 0 WHERE oid = %s::regclass", [table])
    _fill(Payment, merchant)
    _assert_page_read_off_the_index(Payment, merchant)
