"""CPU per request of the read paths (``GET /payments?limit=20``, ``GET /payments/{id}`` on a cache
miss and on a hit) and of ``POST /payments`` (when ``AUTHORIZE_NET_ENDPOINT`` names a running emulator:
``python manage.py anet_sandbox --port 8999``), in one thread through the full Django stack, for a
paired A/B of two trees. The CPU is this process's (the web side); the emulator's is not counted.

    python bench/reads_ab.py seed            # once: a merchant, a key and 400 payments (1 in 4 refunded)
    python bench/reads_ab.py run 200         # from each tree's root in turn, alternated several times

The tree whose root is the working directory is the code measured; both use the same database and
Redis (DATABASE_URL, REDIS_URL). Prints one JSON line: CPU milliseconds per request of each kind
(the statements each costs are pinned by payments/tests/test_payments_queries.py).
PROFILE=list|get_miss|get_hit adds a cProfile listing on stderr.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import sys
import time
from decimal import Decimal

sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
os.environ.setdefault("DEBUG", "false")
STATE = os.environ.get("READS_AB_STATE", "/tmp/easypay-reads-ab.json")  # noqa: S108


def seed() -> None:
    from accounts.models import Merchant
    from accounts.services import api_key_create
    from payments.models import Payment, PaymentStatus, Refund

    merchant = Merchant.objects.create(name="reads bench", email="reads-bench@example.com")
    created = api_key_create(
        merchant=merchant,
        name="reads bench",
        permissions=["*"],
        rate_limit_per_minute=10**6,
        rate_limit_per_hour=10**8,
        rate_limit_per_day=10**9,
    )
    ids = []
    for index in range(400):
        refunded = index % 4 == 0
        payment = Payment.objects.create(
            merchant=merchant,
            amount=Decimal("50.00"),
            currency="USD",
            status=PaymentStatus.PARTIALLY_REFUNDED if refunded else PaymentStatus.CAPTURED,
            authorized_amount=Decimal("50.00"),
            captured_amount=Decimal("50.00"),
            refunded_amount=Decimal("1.00") if refunded else Decimal(0),
            refund_count=1 if refunded else 0,
            card_last_four="4242",
            card_brand="visa",
            metadata={"order": index},
            customer_id=f"c{index}",
        )
        if refunded:
            Refund.objects.create(payment=payment, amount=Decimal("1.00"), status=Refund.Status.SUCCEEDED)
        ids.append(str(payment.pk))
    with open(STATE, "w") as handle:
        json.dump({"key": created.key, "ids": ids, "merchant_id": str(merchant.pk)}, handle)


def run(count: int) -> None:
    from django.test import Client

    from payments.cache import payment_cache_invalidate

    with open(STATE) as handle:
        state = json.load(handle)
    client = Client(HTTP_X_API_KEY=state["key"], HTTP_HOST="127.0.0.1")
    ids = state["ids"]

    def listing(i: int):
        return client.get("/api/v1/payments?limit=20")

    def get_miss(i: int):
        payment_cache_invalidate(merchant_id=state["merchant_id"], payment_id=ids[i % len(ids)])
        return client.get(f"/api/v1/payments/{ids[i % len(ids)]}")

    def get_hit(i: int):
        return client.get(f"/api/v1/payments/{ids[i % 5]}")

    run_id = os.urandom(4).hex()

    def post(i: int):
        body = {"amount": "25.99", "currency": "USD", "card_token": "tok_visa_4242", "customer_id": f"c{i}"}
        return client.post(
            "/api/v1/payments",
            data=json.dumps(body),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=f"ab-{run_id}-{i}",
        )

    kinds = [("list", listing, 200), ("get_miss", get_miss, 200), ("get_hit", get_hit, 200)]
    if os.environ.get("AUTHORIZE_NET_ENDPOINT"):
        kinds.append(("post", post, 201))
    result = {}
    for name, fn, expected in kinds:
        for i in range(20):  # warm caches and connections
            response = fn(10**6 + i)
            assert response.status_code == expected, (name, response.status_code, response.content[:300])
        started = time.process_time()
        for i in range(count):
            fn(i)
        cpu_ms = (time.process_time() - started) / count * 1000
        result[name] = {"cpu_ms": round(cpu_ms, 3)}
        if os.environ.get("PROFILE") == name:
            profiler = cProfile.Profile(time.process_time)  # CPU, not waiting on the database or processor
            profiler.enable()
            for i in range(count):
                fn(2 * 10**6 + i)  # new Idempotency-Keys: the measured loop's would be replays
            profiler.disable()
            stats = pstats.Stats(profiler, stream=sys.stderr)
            stats.sort_stats(os.environ.get("PROFILE_SORT", "cumulative"))
            stats.print_stats(int(os.environ.get("PROFILE_LINES", "50")))
    print(json.dumps(result))


if __name__ == "__main__":
    import django

    django.setup()
    if sys.argv[1] == "seed":
        seed()
    else:
        run(int(sys.argv[2]))
