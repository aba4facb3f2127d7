"""``manage.py bill_subscriptions [--date YYYY-MM-DD] [--batch-size N] [--json]``: the billing pass, now.

Runs in this process exactly what Celery beat schedules (``subscriptions.tasks.bill_due_subscriptions``).
"""

from __future__ import annotations

import json
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from subscriptions.tasks import bill_due_subscriptions


def _iso_date(value: str) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise CommandError(f"--date must be YYYY-MM-DD, got {value!r}") from None


class Command(BaseCommand):
    help = "Charge every active or past_due subscription due on or before --date (default: today, UTC)."

    def add_arguments(self, parser):
        parser.add_argument("--date", dest="day", default=None, help="billing date YYYY-MM-DD (UTC); default today")
        parser.add_argument("--batch-size", type=int, default=500, help="subscriptions claimed per batch")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args, day=None, batch_size=500, **options):
        as_json = options.get("json", False)
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        report = bill_due_subscriptions(today=_iso_date(day) if day else None, batch_size=batch_size)
        if as_json:
            self.stdout.write(json.dumps(report))
            return
        self.stdout.write(
            f"Billing pass for {report['date']}: due {report['due']}, succeeded {report['succeeded']}, "
            f"failed {report['failed']}, skipped {report['skipped']}, errors {report['errors']} "
            f"({report['duration_seconds']}s)"
        )
