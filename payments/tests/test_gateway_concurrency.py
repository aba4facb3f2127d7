"""The adapter under threads: gunicorn --threads and Celery thread pools share one gateway."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from payments.gateways import ChargeRequest, get_gateway

THREADS = 20


def test_twenty_threads_each_get_their_own_transaction(anet_sandbox):
    gateway = get_gateway()
    start = threading.Barrier(THREADS)

    def one(n: int):
        reference = f"c{n}_{uuid.uuid4().hex[:10]}"
        amount = Decimal(f"{10 + n}.{n:02d}")
        start.wait()
        result = gateway.charge(
            ChargeRequest(
                amount=amount,
                currency="USD",
                capture=n % 2 == 0,
                reference=reference,
                card_token="tok_mastercard" if n % 3 else "tok_visa",
            )
        )
        details = gateway.transaction_details(transaction_id=result.transaction_id)
        return n, reference, amount, result, details

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        outcomes = list(pool.map(one, range(THREADS)))

    assert len({result.transaction_id for _, _, _, result, _ in outcomes}) == THREADS
    for n, reference, amount, result, details in outcomes:
        assert result.approved, result
        assert result.card_last_four == ("0015" if n % 3 else "1111")
        assert details.transaction_id == result.transaction_id
        assert details.invoice_number == reference
        assert details.auth_amount == amount
        assert details.transaction_type == ("authCaptureTransaction" if n % 2 == 0 else "authOnlyTransaction")
        recorded = anet_sandbox.state.transaction(result.transaction_id)
        assert (recorded.invoice_number, recorded.amount) == (reference, amount)
    assert len(anet_sandbox.state.snapshot()) == THREADS
