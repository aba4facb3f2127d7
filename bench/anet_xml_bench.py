"""Single-thread CPU cost of building + serialising each Authorize.Net request the adapter sends.

    .venv/bin/python -m bench.anet_xml_bench [--number 500] [--repeat 7]

For each request type: the SDK path the adapter used before the templates (the ``apicontractsv1``
pyxb objects, serialised with pyxb's validating generation, the reference the tests compare with)
and the template (``anet_xml``). CPU time (``time.process_time``), best of ``--repeat`` runs of
``--number`` calls, in microseconds per request; the two are interleaved run by run so a busy machine
hits them alike.
"""

from __future__ import annotations

import argparse
import os
import time
from decimal import Decimal

import django


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--number", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    django.setup()

    from payments.gateways.authorize_net import ACCEPT_DESCRIPTOR, anet_sdk, anet_xml
    from payments.gateways.authorize_net.anet_xml import CardData, Credentials, OpaqueData, ProfileRef
    from payments.gateways.emulator_credentials import EMULATOR_API_LOGIN_ID, EMULATOR_TRANSACTION_KEY
    from payments.gateways.tokens import resolve_test_token

    auth = Credentials(EMULATOR_API_LOGIN_ID, EMULATOR_TRANSACTION_KEY)
    card = resolve_test_token("tok_visa")
    charge = {
        "auth": auth,
        "capture": True,
        "amount": Decimal("25.99"),
        "currency": "USD",
        "reference": "pay_0123456789abcdef",
        "description": "Order 1",
        "customer_id": "cust_1",
        "customer_email": "customer@example.com",
        "bill_to_zip": None,
        "duplicate_window": 0,
    }
    cases = {
        "charge, test card (authCapture)": ("charge", charge | {"source": CardData(card.number, card.expiry, "123")}),
        "charge, Accept nonce (authOnly)": (
            "charge",
            charge | {"capture": False, "source": OpaqueData(ACCEPT_DESCRIPTOR, "eyJjb2RlIjoiNTBf" * 20)},
        ),
        "charge, customer profile": ("charge", charge | {"source": ProfileRef("900100", "900200")}),
        "priorAuthCapture": (
            "capture",
            {"auth": auth, "transaction_id": "60000000001", "amount": Decimal("25.99"), "duplicate_window": 0},
        ),
        "refund": (
            "refund",
            {
                "auth": auth,
                "transaction_id": "60000000001",
                "amount": Decimal("5.00"),
                "card_number": "1111",
                "reference": "ref_1",
                "duplicate_window": 0,
            },
        ),
        "void": ("void", {"auth": auth, "transaction_id": "60000000001"}),
        "getTransactionDetails": ("transaction_details", {"auth": auth, "transaction_id": "60000000001"}),
        "getCustomerProfile": ("customer_profile", {"auth": auth, "customer_profile_id": "900100"}),
    }

    def sdk(name, kwargs):
        return getattr(anet_sdk, name)(**kwargs)

    def timed(fn, name, kwargs, number):
        start = time.process_time()
        for _ in range(number):
            fn(name, kwargs)
        return (time.process_time() - start) / number * 1e6

    paths = {
        "sdk validated": sdk,
        "template": lambda name, kwargs: getattr(anet_xml, name)(**kwargs),
    }
    print(f"CPU us per request, best of {args.repeat} x {args.number}")
    print(f"{'request':34} " + " ".join(f"{p:>14}" for p in paths) + f" {'speed-up':>9}")
    for label, (name, kwargs) in cases.items():
        assert anet_xml.__dict__[name](**kwargs) == getattr(anet_sdk, name)(**kwargs), label
        best = dict.fromkeys(paths, float("inf"))
        for _ in range(args.repeat):
            for path, fn in paths.items():
                number = args.number if path == "template" else max(1, args.number // 10)
                cpu = timed(fn, name, kwargs, number)
                best[path] = min(best[path], cpu)
        print(
            f"{label:34} "
            + " ".join(f"{best[p]:14.1f}" for p in paths)
            + f" {best['sdk validated'] / best['template']:8.0f}x"
        )


if __name__ == "__main__":
    main()
