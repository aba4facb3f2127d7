"""Deterministic CPU profile of the hot paths: N requests of each kind through the full Django stack
(every middleware, DRF, auth, rate limits, audit, the processor call to the emulator) in ONE thread
with cProfile, against the benchmark's database, Redis and emulator while nothing else loads them.

Unlike py-spy on a loaded worker, this is not skewed by GIL hand-offs or CPU oversubscription: it
says how many milliseconds of CPU each request costs and where. Run by ``bench/run.py`` when
BENCH_PROFILE=1; prints one JSON line.

    python -m bench.cprofile_requests --api-key KEY --ids-file FILE [--count 200]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import secrets
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--ids-file", required=True)
    parser.add_argument("--count", type=int, default=150)
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--stamp", required=True)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
    import django

    django.setup()
    from django.test import Client

    client = Client(HTTP_X_API_KEY=args.api_key, HTTP_HOST="127.0.0.1")
    ids = Path(args.ids_file).read_text().split()
    nonce = secrets.token_hex(4)

    def get(i: int) -> int:  # ten ids, warmed first: the cache-hit path that dominates under load
        return client.get(f"/api/v1/payments/{ids[i % 10]}").status_code

    def get_miss(i: int) -> int:  # each id once (from the end of the list): cache miss, DB read, cache set
        return client.get(f"/api/v1/payments/{ids[-1 - i % (len(ids) - 10)]}").status_code

    def listing(i: int) -> int:
        return client.get("/api/v1/payments?limit=20").status_code

    def post(i: int) -> int:
        body = {"amount": f"{1 + i % 900}.00", "currency": "USD", "card_token": "tok_visa", "customer_id": "cust_cp"}
        return client.post(
            "/api/v1/payments",
            data=json.dumps(body),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=f"cprofile-{nonce}-{i}",
        ).status_code

    # The load scenarios cached most payments: forget the ones the miss path reads.
    from payments.cache import payment_cache_invalidate
    from payments.models import Payment

    miss_ids = {ids[-1 - i % (len(ids) - 10)] for i in range(10, 10 + 2 * args.count)}
    for pk, merchant_id in Payment.objects.filter(pk__in=miss_ids).values_list("pk", "merchant_id"):
        payment_cache_invalidate(merchant_id=merchant_id, payment_id=pk)

    result = {}
    for name, fn in (("get_by_id", get), ("get_by_id_miss", get_miss), ("list", listing), ("post", post)):
        statuses = [fn(i) for i in range(10)] if fn is not get_miss else []  # warm caches and connections
        cpu0, wall0 = time.process_time(), time.perf_counter()
        statuses += [fn(i + 10) for i in range(args.count)]
        cpu = (time.process_time() - cpu0) / args.count * 1000
        wall = (time.perf_counter() - wall0) / args.count * 1000
        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(args.count):
            fn(i + 10 + args.count)
        profiler.disable()
        out = Path(args.out_dir) / f"{args.stamp}-{name}.pstats"
        profiler.dump_stats(out)
        stats = pstats.Stats(profiler)
        total = stats.total_tt or 1
        rows = []
        for (filename, line, func), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():
            rows.append((cumtime, tottime, ncalls, f"{func} ({_short(filename)}:{line})"))
        top_cum = [
            {"function": f, "cum_percent": round(100 * c / total, 1), "calls_per_request": round(n / args.count, 1)}
            for c, _t, n, f in sorted(rows, reverse=True)
            if _interesting(f)
        ][:30]
        top_self = [
            {"function": f, "self_percent": round(100 * t / total, 1), "calls_per_request": round(n / args.count, 1)}
            for _c, t, n, f in sorted(rows, key=lambda r: r[1], reverse=True)
        ][:20]
        top_project = [
            {"function": f, "cum_percent": round(100 * c / total, 1), "calls_per_request": round(n / args.count, 1)}
            for c, _t, n, f in sorted(rows, reverse=True)
            if _project(f)
        ][:25]
        result[name] = {
            "requests": args.count,
            "statuses": {str(s): statuses.count(s) for s in set(statuses)},
            "cpu_ms_per_request": round(cpu, 2),
            "wall_ms_per_request": round(wall, 2),
            "pstats": str(out),
            "top_cumulative": top_cum,
            "top_project": top_project,
            "top_self": top_self,
        }
    print(json.dumps(result))


def _short(filename: str) -> str:
    if "site-packages/" in filename:
        return "site-packages/" + filename.split("site-packages/", 1)[1]
    if filename.startswith(os.getcwd() + "/"):
        return filename[len(os.getcwd()) + 1 :]
    return filename.rsplit("/lib/python3", 1)[-1]


def _project(function: str) -> bool:
    """EasyPay's own functions (and the SDK's parser), without the middleware chain every request wraps."""
    if "site-packages" in function or "cprofile_requests" in function or "floor_wsgi" in function:
        return "apicontractsv1" in function
    if "/lib/python3" in function or function.startswith("<") or "(~" in function:
        return False
    return not (function.startswith("__call__ (") and "middleware.py" in function)


def _interesting(function: str) -> bool:
    """Project code and the few library entry points worth naming (not the call chain above the view)."""
    boring = ("django/core/handlers", "django/test/", "deprecation.py", "exception.py", "cprofile_requests", "<")
    return not any(b in function for b in boring)


if __name__ == "__main__":
    main()
