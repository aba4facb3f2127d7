"""Seed the benchmark database: N captured payments of one merchant, written in bulk through the ORM.

The rows look like what ``POST /api/v1/payments`` stores for an approved ``tok_visa`` purchase
(status captured, authorized = captured = amount, processor ids, card brand and last four), spread over
the last days so the list's cursor pages are realistic. Prints the ids, one a line, to ``--out``.

    DJANGO_SETTINGS_MODULE=config.settings.production python -m bench.seed --merchant-id <uuid> --count 1000 --out ids
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from datetime import timedelta
from decimal import Decimal


def main() -> int:
    parser = argparse.ArgumentParser(description="Seed bench payments.")
    parser.add_argument("--merchant-id", required=True)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from accounts.models import Merchant

    try:
        from payments.models import Payment
    except ImportError as exc:
        print(json.dumps({"seeded": 0, "reason": f"payments.models.Payment missing: {exc}"}))
        return 0
    if Payment._meta.db_table not in connection.introspection.table_names():
        print(json.dumps({"seeded": 0, "reason": f"table {Payment._meta.db_table} missing (no migration yet)"}))
        return 0

    merchant = Merchant.objects.get(pk=args.merchant_id)
    fields = {f.name for f in Payment._meta.get_fields()}
    now = timezone.now()
    rows = []
    for i in range(args.count):
        amount = Decimal(f"{1 + i % 900}.{i % 100:02d}")
        values = {
            "merchant": merchant,
            "amount": amount,
            "currency": "USD",
            "status": "captured",
            "payment_method": "credit_card",
            "customer_id": f"cust_seed_{i % 50}",
            "customer_email": "seed@example.com",
            "customer_name": "Seed Customer",
            "card_last_four": "1111",
            "card_brand": "Visa",
            "description": f"seeded payment {i}",
            "metadata": {"seed": i},
            "processor_response_code": "1",
            "processor_response_message": "This transaction has been approved.",
            "processor_transaction_id": str(60000000000 + i),
            "auth_code": secrets.token_hex(3).upper(),
            "avs_result": "Y",
            "cvv_result": "M",
            "authorized_amount": amount,
            "captured_amount": amount,
            "processed_at": now - timedelta(minutes=i),
            "is_test": True,
        }
        rows.append(Payment(**{k: v for k, v in values.items() if k in fields}))
    Payment.objects.bulk_create(rows, batch_size=500)
    # created_at is auto_now_add: spread it afterwards so pages and ordering look like real history.
    with connection.cursor() as cursor:
        table = connection.ops.quote_name(Payment._meta.db_table)
        cursor.execute(
            f"UPDATE {table} SET created_at = processed_at, updated_at = processed_at "  # noqa: S608 (table name from _meta)
            "WHERE merchant_id = %s AND processed_at IS NOT NULL",
            [merchant.pk],
        )
    ids = [str(pk) for pk in Payment.objects.filter(merchant=merchant).values_list("pk", flat=True)]
    with open(args.out, "w") as fh:
        fh.write("\n".join(ids) + "\n")
    print(json.dumps({"seeded": len(rows), "ids": len(ids)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
