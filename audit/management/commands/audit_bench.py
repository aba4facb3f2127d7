"""``python manage.py audit_bench [--requests N] [--json]``: what an audit row costs a request.

Runs N authenticated ``GET /api/v1/auth/me`` calls through the Django test client (the whole middleware
and DRF stack, no network) in three modes: audit off, audit with synchronous inserts, audit buffered
(background bulk inserts), in interleaved rounds. Prints the median and best requests per second and
the process CPU per request (the buffered mode's background inserts included). Use a database of your own: it creates
a "audit-bench" merchant and key, and leaves the rows it writes.
"""

from __future__ import annotations

import json
import statistics
import time

from django.core.management.base import BaseCommand
from django.test import Client, override_settings

from accounts.services import api_key_create, merchant_get_or_create
from audit import writer
from audit.models import AuditLog


class Command(BaseCommand):
    help = "Micro-benchmark of the audit trail's cost per API request (off / sync / buffered)."

    def add_arguments(self, parser):
        parser.add_argument("--requests", type=int, default=1000)
        parser.add_argument("--rounds", type=int, default=5)
        parser.add_argument("--path", default="/api/v1/auth/me")
        parser.add_argument("--json", action="store_true")

    def _run(self, client: Client, key: str, path: str, n: int) -> tuple[float, float]:
        """(wall seconds, process CPU seconds) for n requests; buffered rows are flushed inside the window."""
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            response = client.get(path, HTTP_X_API_KEY=key)
            if response.status_code != 200:
                raise SystemExit(f"{path} answered {response.status_code}: {response.content[:300]!r}")
        writer.flush()  # the buffered mode's inserts count too (CPU), however they are scheduled
        return time.perf_counter() - wall, time.process_time() - cpu

    def handle(self, *args, **options):
        n, rounds, path = options["requests"], options["rounds"], options["path"]
        merchant, _ = merchant_get_or_create(name="audit-bench")
        created = api_key_create(
            merchant=merchant,
            name="audit bench",
            permissions=["*"],
            rate_limit_per_minute=10**9,
            rate_limit_per_hour=10**9,
            rate_limit_per_day=10**9,
        )
        client = Client()
        modes = {
            "audit_off": {"AUDIT_ENABLED": False},
            "audit_sync": {"AUDIT_ENABLED": True, "AUDIT_SYNC_WRITES": True},
            "audit_buffered": {"AUDIT_ENABLED": True, "AUDIT_SYNC_WRITES": False},
        }
        for _ in range(50):  # warm caches and connections
            client.get(path, HTTP_X_API_KEY=created.key)
        writer.flush()
        before = AuditLog.objects.count()
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in modes}
        per_round = max(n // rounds, 1)
        # Interleaved rounds, so a noisy neighbour hurts every mode alike; the median round is reported.
        for _ in range(rounds):
            for name, overrides in modes.items():
                with override_settings(**overrides):
                    samples[name].append(self._run(client, created.key, path, per_round))
        writer.buffer.shutdown()
        written = AuditLog.objects.count() - before
        summary = {"requests_per_mode": per_round * rounds, "rounds": rounds, "path": path, "modes": {}}
        for name, rows in samples.items():
            walls = sorted(w for w, _ in rows)
            cpus = sorted(c for _, c in rows)
            summary["modes"][name] = {
                "rps_median": round(per_round / statistics.median(walls), 1),
                "rps_best": round(per_round / walls[0], 1),
                "cpu_ms_per_request": round(1000 * statistics.median(cpus) / per_round, 2),
            }
        summary["rows_written"] = written
        summary["rows_expected"] = 2 * per_round * rounds
        if options["json"]:
            self.stdout.write(json.dumps(summary))
            return
        for name, figures in summary["modes"].items():
            self.stdout.write(
                f"{name:>15}: median {figures['rps_median']:8.1f} req/s, best {figures['rps_best']:8.1f} req/s, "
                f"{figures['cpu_ms_per_request']:6.2f} CPU ms/request"
            )
        self.stdout.write(f"rows written {written} of {summary['rows_expected']}")
