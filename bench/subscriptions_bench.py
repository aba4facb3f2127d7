"""Benchmark of the recurring-billing pass (not a test).

Creates N subscriptions due today (bulk_create) for a fresh merchant, runs
``subscription_billing_run`` against a running Authorize.Net emulator, and prints the throughput
(subscriptions per second) and the totals. Use a throw-away database:

    createdb -h 127.0.0.1 -U postgres easypay_subbench
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/easypay_subbench
    .venv/bin/python manage.py migrate
    .venv/bin/python -m payments.gateways.sandbox --port 8997 &
    AUTHORIZE_NET_ENDPOINT=http://127.0.0.1:8997/xml/v1/request.api \\
        .venv/bin/python bench/subscriptions_bench.py --count 10000 [--workers 2] [--batch-size 500] [--json]

``--workers N`` runs N passes at once (threads), as N Celery workers would: the totals show that every
subscription is still billed exactly once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
os.environ.setdefault("LOG_LEVEL", "WARNING")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="subscriptions to create and bill")
    parser.add_argument("--batch-size", type=int, default=500, help="subscriptions claimed per batch")
    parser.add_argument("--workers", type=int, default=1, help="billing passes run at once (threads)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    from accounts.models import Merchant
    from payments.models import Payment
    from subscriptions.billing import subscription_billing_run
    from subscriptions.models import BillingAttempt, Subscription

    if connection.vendor != "postgresql":
        print("warning: not PostgreSQL; passes run serially and the figure means little", file=sys.stderr)
    today = date.today()
    already_due = Subscription.objects.filter(status__in=("active", "past_due"), next_billing_date__lte=today).count()
    if already_due:
        print(f"note: {already_due} subscriptions were already due; the pass bills them too", file=sys.stderr)
    merchant = Merchant.objects.create(name=f"bench-{uuid.uuid4().hex[:12]}", email="bench@example.com")
    method = {"type": "test_token", "token": "tok_visa", "card_last_four": "1111", "card_brand": "visa"}

    started = time.monotonic()
    rows = []
    for i in range(args.count):
        rows.append(
            Subscription(
                merchant=merchant,
                external_id=f"bench_{i}",
                customer_id=f"cus_{i}",
                plan_id="bench",
                billing_cycle="monthly",
                amount=Decimal("9.99"),
                currency="USD",
                start_date=today,
                next_billing_date=today,
                payment_method=method,
                is_test=True,
            )
        )
        if len(rows) == 2000:
            Subscription.objects.bulk_create(rows)
            rows = []
    if rows:
        Subscription.objects.bulk_create(rows)
    created_s = time.monotonic() - started

    reports, errors = [], []

    def run_pass():
        try:
            reports.append(subscription_billing_run(today=today, batch_size=args.batch_size))
        except Exception as exc:
            errors.append(repr(exc))
        finally:
            connection.close()

    started = time.monotonic()
    if args.workers <= 1:
        run_pass()
    else:
        threads = [threading.Thread(target=run_pass) for _ in range(args.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    elapsed = time.monotonic() - started

    processed = sum(r.succeeded + r.failed + r.errors for r in reports)
    subs = Subscription.objects.filter(merchant=merchant)
    payments = Payment.objects.filter(merchant=merchant)
    result = {
        "subscriptions": args.count,
        "workers": args.workers,
        "batch_size": args.batch_size,
        "database": connection.vendor,
        "endpoint": settings.AUTHORIZE_NET_ENDPOINT,
        "create_seconds": round(created_s, 2),
        "billing_seconds": round(elapsed, 2),
        "already_due_before": already_due,
        "charged": processed,
        "subscriptions_per_second": round(processed / elapsed, 1) if elapsed else None,
        "reports": [r.as_dict() for r in reports],
        "errors": errors,
        "payments_captured": payments.filter(status="captured").count(),
        "payments_total": payments.count(),
        "payments_per_subscription_max": max((row["n"] for row in _per_subscription_counts(payments)), default=0),
        "attempts_succeeded": BillingAttempt.objects.filter(
            subscription__merchant=merchant, status="succeeded"
        ).count(),
        "still_due": subs.filter(next_billing_date__lte=today).count(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{processed} subscriptions charged in {elapsed:.1f}s with {args.workers} worker(s): "
            f"{result['subscriptions_per_second']} subscriptions/s; captured {result['payments_captured']}, "
            f"payments {result['payments_total']}, max per subscription {result['payments_per_subscription_max']}, "
            f"still due {result['still_due']}, errors {errors or 'none'}"
        )
    return 0 if not errors and result["payments_total"] == args.count else 1


def _per_subscription_counts(payments):
    from django.db.models import Count

    return payments.values("subscription_id").annotate(n=Count("id")).values("n")


if __name__ == "__main__":
    sys.exit(main())
