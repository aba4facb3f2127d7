"""``reconcile``: run the reconciliation and settlement passes now (what Celery beat schedules)."""

from __future__ import annotations

import json
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from payments.gateways import GatewayError
from payments.reconciliation import ledger_reconcile
from payments.tasks import reconcile_pending_payments, sync_settlements


class Command(BaseCommand):
    help = (
        "Resolve payments whose processor reply was lost (pending ones, lost refunds, captures and voids) "
        "and record settlements; then compare EasyPay's ledger with the processor's transactions (orphans, "
        "status, settlement, amount and refund mismatches) and fix what can be fixed. Exits 0 with findings "
        "unless --fail-on-mismatch."
    )

    def add_arguments(self, parser):
        parser.add_argument("--date", default=None, help="only payments created on this day (YYYY-MM-DD, UTC)")
        parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
        parser.add_argument(
            "--fail-on-mismatch", action="store_true", help="exit 1 when a mismatch remains unfixed (or errors)"
        )
        parser.add_argument("--no-fix", action="store_true", help="only report ledger mismatches, fix nothing")

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
        try:
            ledger = ledger_reconcile(day=on_date, fix=not options["no_fix"])
        except GatewayError as exc:
            raise CommandError(f"Could not read the processor's transactions: {exc}") from exc
        report["ledger"] = ledger.to_dict()
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
        else:
            self._print_text(report)
        if options["fail_on_mismatch"] and ledger.unfixed_count:
            raise CommandError(f"{ledger.unfixed_count} ledger mismatch(es) remain unfixed.", returncode=1)

    def _print_text(self, report: dict) -> None:
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
        self._print_ledger(report["ledger"])

    def _print_ledger(self, ledger: dict) -> None:
        summary = ledger["summary"]
        self.stdout.write(
            f"Ledger {ledger['window_start']} .. {ledger['window_end']}: {ledger['processor_transactions']} "
            f"processor transaction(s) ({ledger['charges']} charge(s), {ledger['refunds']} refund(s), "
            f"{ledger['voids']} void(s)), {ledger['matched']} matched, {ledger['payments_checked']} payment(s) checked."
        )
        self.stdout.write(
            f"  {summary['mismatches']} mismatch(es): {summary['fixed']} fixed, {summary['unfixed']} unfixed."
        )
        for item in ledger["orphans"]:
            self.stdout.write(
                f"  orphan charge {item['transaction_id']} {item['amount']} invoice {item['invoice_number'] or '-'}"
                f" ({item['processor_status']}): unknown to EasyPay"
            )
        for item in ledger["status_mismatches"]:
            self.stdout.write(
                f"  status {item['payment_id']}: processor {item['processor_status']}, EasyPay {item['easypay_status']}"
                f" -> {item['status_after']}{' (fixed)' if item['fixed'] else ''}"
            )
        for item in ledger["missing_settlements"]:
            self.stdout.write(
                f"  settlement {item['payment_id']}: settled at the processor, settled_at "
                f"{item['settled_at'] or 'missing'}{' (fixed)' if item['fixed'] else ''}"
            )
        for item in ledger["amount_mismatches"]:
            self.stdout.write(
                f"  amount {item['payment_id']}: processor {item['processor_amount']}, EasyPay {item['field']} "
                f"{item['easypay_amount']} {item['currency']}"
            )
        for item in ledger["unknown_at_processor"]:
            self.stdout.write(
                f"  unknown {item['payment_id']}: processor has no transaction {item['processor_transaction_id']}"
            )
        for item in ledger["refund_mismatches"]:
            self.stdout.write(
                f"  refunds {item['payment_id']}: processor {item['processor_refunded']}, EasyPay "
                f"{item['easypay_refunded']} {item['currency']}"
            )
        for item in ledger["errors"]:
            self.stdout.write(f"  error {item.get('payment_id', '-')}: {item['error']}")
