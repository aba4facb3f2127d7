"""``reconcile``: run the reconciliation and settlement passes now (what Celery beat schedules)."""

from __future__ import annotations

import json
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from payments.tasks import reconcile_pending_payments, sync_settlements


class Command(BaseCommand):
    help = (
        "Resolve payments whose processor reply was lost (pending ones, lost refunds, captures and voids) "
        "and record settlements; prints what it fixed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--date", default=None, help="only payments created on this day (YYYY-MM-DD, UTC)")
        parser.add_argument("--json", action="store_true", help="print machine-readable JSON")

    def handle(self, *args, **options):
        on_date = None
        if options["date"]:
            try:
                on_date = date.fromisoformat(options["date"])
            except ValueError:
                raise CommandError("--date must be YYYY-MM-DD.") from None
        report = {
            "date": on_date.isoformat() if on_date else None,
            "reconciled": reconcile_pending_payments(on_date=on_date),
            "settlements": sync_settlements(on_date=on_date),
        }
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
            return
        rec = report["reconciled"]
        self.stdout.write(f"Checked {rec['checked']} payment(s) awaiting reconciliation.")
        for item in rec["fixed"]:
            self.stdout.write(
                f"  fixed {item['payment_id']} ({item['external_id']}): {item['from_status']} -> {item['to_status']}"
                f" transaction {item['processor_transaction_id'] or '-'}"
            )
        for item in rec["errors"]:
            self.stdout.write(f"  error {item['payment_id']}: {item['error']}")
        settled = report["settlements"]["settled"]
        self.stdout.write(f"Recorded settlement of {len(settled)} payment(s).")
        for item in report["settlements"]["errors"]:
            self.stdout.write(f"  error {item['payment_id']}: {item['error']}")
