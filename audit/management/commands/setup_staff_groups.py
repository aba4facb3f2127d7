"""``python manage.py setup_staff_groups [--json]``: create or reset the support/finance/admin groups."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from audit.staff_groups import staff_groups_setup


class Command(BaseCommand):
    help = "Create (or reset to their definition) the staff groups support, finance and admin. Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, **options):
        counts = staff_groups_setup()
        if options["json"]:
            self.stdout.write(json.dumps({"groups": counts}))
        else:
            for name, count in counts.items():
                self.stdout.write(f"{name}: {count} permissions")
