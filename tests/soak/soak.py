"""EasyPay soak run (``make soak``): mixed load with faults injected, then a LEDGER CHECK.

1. Starts the real stack on loopback (``tests/faults/stack.py``: fresh database
   ``easypay_faults_soak_*``, a private redis-server, gunicorn, a Celery worker and beat, the emulator, a webhook
   receiver; everything stopped by pid and the database dropped at the end).
2. For ``SOAK_SECONDS`` (default 120, capped at ``SOAK_MAX_SECONDS`` = 600) ``SOAK_THREADS`` (6)
   clients send a mix: purchases and authorizations with fresh Idempotency-Keys, the same requests
   again with their keys (must replay the first answer), captures, partial refunds, voids, GETs.
3. Meanwhile faults are injected at fixed fractions of the run: the emulator's latency beyond
   AUTHORIZE_NET_READ_TIMEOUT (answers lost: payments left pending), the emulator answering HTTP 500,
   the emulator dropping connections, and the Celery worker killed (SIGKILL) and started again.
4. Runs ``manage.py reconcile`` until nothing is pending, waits for the webhook deliveries to drain.
5. LEDGER CHECK, printed as a table and as JSON: every payment EasyPay answered 201 for exists exactly
   once at the processor with the same amount; every processor charge and refund is known to EasyPay
   (no orphan); statuses and captured amounts agree; refunds never exceed captures, in EasyPay and at
   the processor, and agree with each other; idempotent replays returned the first payment; every
   event was delivered (or is listed as failed); no answer was a 500, a broken connection or not JSON.
   Exit status 1 when any check has a mismatch.

    SOAK_SECONDS=60 .venv/bin/python tests/soak/soak.py
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.faults.helpers import CHARGE_TYPES, new_key, payment_body, unique_amount  # noqa: E402
from tests.faults.stack import DEFAULT_ENV, Stack, log, wait_until  # noqa: E402

SOAK_MAX_SECONDS = 600
READ_TIMEOUT = float(DEFAULT_ENV["AUTHORIZE_NET_READ_TIMEOUT"])
EXPECTED = {
    "create": {201, 402, 409, 502, 503},
    "replay": {201, 402, 409, 502, 503},
    "capture": {200, 409, 502, 503},
    "refund": {200, 400, 409, 502, 503},
    "cancel": {200, 409, 502, 503},
    "get": {200},
}
PROCESSOR_STATUS = {  # EasyPay status -> the emulator statuses that agree with it
    "captured": {"settledSuccessfully", "capturedPendingSettlement"},
    "partially_refunded": {"settledSuccessfully", "capturedPendingSettlement"},
    "refunded": {"settledSuccessfully", "capturedPendingSettlement"},
    "authorized": {"authorizedPendingCapture"},
    "voided": {"voided"},
    "declined": {"declined"},
    "held": {"FDSPendingReview", "FDSAuthorizedPendingReview"},
}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


# --- the clients -----------------------------------------------------------------------------------


@dataclass
class Known:
    id: str
    amount: Decimal
    status: str
    captured: Decimal = Decimal(0)
    refunded: Decimal = Decimal(0)


@dataclass
class Book:
    lock: threading.Lock = field(default_factory=threading.Lock)
    payments: dict[str, Known] = field(default_factory=dict)
    created_201: dict[str, Decimal] = field(default_factory=dict)  # id -> amount EasyPay said 201 for
    sent_keys: list[tuple[str, dict, int, str | None]] = field(default_factory=list)  # key, body, status, id
    replays: list[dict] = field(default_factory=list)
    unexpected: list[dict] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)

    def note(self, op: str, reply) -> None:
        with self.lock:
            self.counts[f"{op} {reply.status}"] += 1
            bad_shape = reply.status >= 400 and not (isinstance(reply.body, dict) and "error" in reply.body)
            if reply.status not in EXPECTED[op] or not reply.is_json or bad_shape:
                self.unexpected.append(
                    {"op": op, "status": reply.status, "error": reply.error, "body": str(reply.raw[:300])}
                )

    def learn(self, data: dict | None) -> None:
        if not isinstance(data, dict) or "id" not in data:
            return
        with self.lock:
            known = self.payments.get(data["id"])
            if known is None:
                known = self.payments[data["id"]] = Known(data["id"], Decimal(data["amount"]), data["status"])
            known.status = data["status"]
            known.captured = Decimal(data.get("captured_amount") or 0)
            known.refunded = Decimal(data.get("refunded_amount") or 0)

    def pick(self, statuses: set[str]) -> Known | None:
        with self.lock:
            candidates = [p for p in self.payments.values() if p.status in statuses]
        return random.choice(candidates) if candidates else None


def client(stack: Stack, book: Book, stop: threading.Event) -> None:
    ops = ["create"] * 30 + ["replay"] * 10 + ["capture"] * 12 + ["refund"] * 15 + ["cancel"] * 6 + ["get"] * 27
    while not stop.is_set():
        op = random.choice(ops)
        try:
            run_op(stack, book, op)
        except Exception as exc:  # a client bug must not end the soak silently
            with book.lock:
                book.unexpected.append({"op": op, "status": -1, "error": repr(exc), "body": ""})
        stop.wait(0.02)


def run_op(stack: Stack, book: Book, op: str) -> None:
    if op == "create":
        capture = random.random() < 0.7
        token = "tok_declined" if random.random() < 0.05 else "tok_visa"
        body = payment_body(unique_amount(), capture=capture, token=token)
        key = new_key()
        reply = stack.api("POST", "/api/v1/payments", body, idempotency_key=key, timeout=60)
        book.note(op, reply)
        data = reply.data if reply.status == 201 else (reply.body or {}).get("data") if reply.is_json else None
        book.learn(data)
        payment_id = data.get("id") if isinstance(data, dict) else None
        with book.lock:
            if reply.status == 201:
                book.created_201[payment_id] = Decimal(body["amount"])
            book.sent_keys.append((key, body, reply.status, payment_id))
        return
    if op == "replay":
        with book.lock:
            stored = [s for s in book.sent_keys if s[2] in (201, 402, 502)]
        if not stored:
            return
        key, body, status, payment_id = random.choice(stored)
        reply = stack.api("POST", "/api/v1/payments", body, idempotency_key=key, timeout=60)
        book.note(op, reply)
        data = reply.data if reply.status == 201 else (reply.body or {}).get("data") if reply.is_json else None
        with book.lock:
            book.replays.append(
                {
                    "key": key,
                    "first_status": status,
                    "first_id": payment_id,
                    "status": reply.status,
                    "id": data.get("id") if isinstance(data, dict) else None,
                    "replayed": reply.headers.get("idempotent-replayed"),
                }
            )
        return
    if op == "capture":
        known = book.pick({"authorized"})
        if known is None:
            return
        body = {} if random.random() < 0.5 else {"amount": str((known.amount / 2).quantize(Decimal("0.01")))}
        key = new_key() if random.random() < 0.5 else None
        reply = stack.api("POST", f"/api/v1/payments/{known.id}/capture", body, idempotency_key=key, timeout=60)
        book.note(op, reply)
        book.learn(reply.data if reply.status == 200 else None)
        return
    if op == "refund":
        known = book.pick({"captured", "partially_refunded"})
        if known is None:
            return
        left = known.captured - known.refunded
        if left <= 0:
            return
        cents = random.randint(1, max(1, int(left * 100)))
        amount = min(left, Decimal(cents) / 100)
        body = {"amount": str(amount.quantize(Decimal("0.01"))), "reason": "soak"}
        key = new_key() if random.random() < 0.5 else None
        reply = stack.api("POST", f"/api/v1/payments/{known.id}/refund", body, idempotency_key=key, timeout=60)
        book.note(op, reply)
        book.learn(reply.data if reply.status == 200 else None)
        return
    if op == "cancel":
        known = book.pick({"authorized"})
        if known is None:
            return
        reply = stack.api("POST", f"/api/v1/payments/{known.id}/cancel", {}, timeout=60)
        book.note(op, reply)
        book.learn(reply.data if reply.status == 200 else None)
        return
    known = book.pick(set(PROCESSOR_STATUS) | {"pending", "failed"})
    if known is None:
        return
    reply = stack.api("GET", f"/api/v1/payments/{known.id}", timeout=60)
    book.note("get", reply)
    book.learn(reply.data if reply.status == 200 else None)


# --- faults ----------------------------------------------------------------------------------------


def faults_plan(stack: Stack, seconds: float) -> list[tuple[float, str, object]]:
    def latency_spike():
        stack.emulator_config(latency_ms=int((READ_TIMEOUT + 1.5) * 1000))
        time.sleep(min(8.0, seconds * 0.08))
        stack.emulator_config(latency_ms=0)

    def http500():
        stack.emulator_config(fail_mode="http500")
        time.sleep(min(5.0, seconds * 0.05))
        stack.emulator_config(fail_mode=None)

    def drop():
        stack.emulator_config(fail_mode="drop", fail_count=4)
        time.sleep(2)
        stack.emulator_config(fail_mode=None)

    def celery_restart():
        stack.procs.kill("celery", signal.SIGKILL)
        time.sleep(2)
        stack.start_celery()

    return [
        (0.20, "emulator latency beyond the read timeout", latency_spike),
        (0.40, "emulator answers HTTP 500", http500),
        (0.55, "emulator drops 4 connections without a reply", drop),
        (0.70, "Celery worker killed (SIGKILL) and restarted", celery_restart),
    ]


def inject(stack: Stack, seconds: float, started: float, stop: threading.Event, done: list) -> None:
    for fraction, name, action in faults_plan(stack, seconds):
        if stop.wait(max(0.0, started + fraction * seconds - time.monotonic())):
            return
        log(f"fault: {name}")
        at = round(time.monotonic() - started, 1)
        try:
            action()
            done.append({"at_s": at, "fault": name, "ok": True})
        except Exception as exc:
            done.append({"at_s": at, "fault": name, "ok": False, "error": repr(exc)})


# --- after the load: reconcile, drain ---------------------------------------------------------------


def settle_everything(stack: Stack) -> dict:
    stack.emulator_config(latency_ms=0, fail_mode=None)
    time.sleep(float(DEFAULT_ENV["PAYMENTS_RECONCILE_AFTER_SECONDS"]) + 1)
    passes = 0
    for _ in range(8):
        passes += 1
        result = stack.manage("reconcile", "--json")
        if result.returncode != 0:
            raise RuntimeError(f"manage.py reconcile failed: {result.stderr[-2000:]}")
        left = stack.sql(
            "SELECT (SELECT count(*) FROM payments_payment WHERE status = 'pending' OR pending_operation <> '') "
            "+ (SELECT count(*) FROM payments_refund WHERE status IN ('pending', 'unknown'))"
        )[0][0]
        if left == 0:
            break
        time.sleep(3)
    started = time.monotonic()
    try:
        wait_until(
            lambda: stack.sql("SELECT count(*) FROM webhooks_eventdelivery WHERE status = 'pending'")[0][0] == 0,
            180,
            interval=2,
            what="webhook deliveries to drain",
        )
    except TimeoutError as exc:
        log(str(exc))
    return {"reconcile_passes": passes, "drain_seconds": round(time.monotonic() - started, 1)}


# --- the ledger check ------------------------------------------------------------------------------


def ledger(stack: Stack, book: Book) -> list[dict]:
    payments = {
        row[0]: {
            "status": row[1],
            "amount": row[2],
            "captured": row[3],
            "refunded": row[4],
            "txn": row[5],
            "reference": row[6],
        }
        for row in stack.sql(
            "SELECT id::text, status, amount, captured_amount, refunded_amount, processor_transaction_id, reference "
            "FROM payments_payment"
        )
    }
    refunds = stack.sql("SELECT payment_id::text, amount, status, processor_transaction_id FROM payments_refund")
    transactions = stack.emulator_transactions()
    charges = [tx for tx in transactions if tx["transaction_type"] in CHARGE_TYPES]
    processor_refunds = [tx for tx in transactions if tx["transaction_type"] == "refundTransaction"]
    by_reference = defaultdict(list)
    for tx in charges:
        by_reference[tx["invoice_number"]].append(tx)
    by_txn = {tx["trans_id"]: tx for tx in transactions}
    known_txns = {p["txn"] for p in payments.values() if p["txn"]}
    known_refs = {p["reference"] for p in payments.values()}
    checks: list[dict] = []

    def check(name: str, checked: int, problems: list) -> None:
        checks.append({"check": name, "checked": checked, "mismatches": len(problems), "examples": problems[:5]})

    # 1. every 201 exists once at the processor, same amount, same transaction id
    problems = []
    for payment_id, amount in book.created_201.items():
        p = payments.get(payment_id)
        if p is None:
            problems.append({"payment": payment_id, "problem": "answered 201 but not in the database"})
            continue
        found = by_reference.get(p["reference"], [])
        if len(found) != 1:
            problems.append({"payment": payment_id, "problem": f"{len(found)} processor charges"})
        elif Decimal(found[0]["amount"]) != amount or p["amount"] != amount:
            problems.append({"payment": payment_id, "problem": f"amount {amount} vs processor {found[0]['amount']}"})
        elif found[0]["trans_id"] != p["txn"]:
            problems.append({"payment": payment_id, "problem": f"txn {p['txn']} vs processor {found[0]['trans_id']}"})
    check("201 payments exist once at the processor, same amount", len(book.created_201), problems)

    # 2. no orphan charge, no duplicate charge for one payment
    problems = [
        {"trans_id": tx["trans_id"], "invoice": tx["invoice_number"], "amount": tx["amount"], "status": tx["status"]}
        for tx in charges
        if tx["trans_id"] not in known_txns and tx["invoice_number"] not in known_refs
    ]
    problems += [
        {"reference": ref, "problem": f"{len(txs)} charges for one payment"}
        for ref, txs in by_reference.items()
        if len(txs) > 1
    ]
    check("every processor charge is a known payment (no orphan/duplicate)", len(charges), problems)

    # 3. statuses and captured amounts agree; nothing left pending
    problems = []
    for payment_id, p in payments.items():
        tx = by_txn.get(p["txn"]) if p["txn"] else None
        if p["status"] == "pending":
            problems.append({"payment": payment_id, "problem": "still pending after reconciliation"})
        elif p["status"] == "failed":
            if tx is not None and tx["status"] not in ("generalError", "declined"):
                problems.append({"payment": payment_id, "problem": f"failed here, {tx['status']} at the processor"})
        elif tx is None:
            problems.append({"payment": payment_id, "problem": f"{p['status']} with no processor transaction"})
        elif tx["status"] not in PROCESSOR_STATUS.get(p["status"], set()):
            problems.append({"payment": payment_id, "problem": f"{p['status']} here, {tx['status']} at the processor"})
        elif (
            p["status"] in ("captured", "partially_refunded", "refunded")
            and Decimal(tx["settle_amount"]) != p["captured"]
        ):
            problems.append(
                {"payment": payment_id, "problem": f"captured {p['captured']} vs settled {tx['settle_amount']}"}
            )
    check("payment status and captured amount agree with the processor", len(payments), problems)

    # 4. refunds never exceed captures; EasyPay and the processor agree
    problems = []
    succeeded = defaultdict(Decimal)
    open_refunds = []
    for payment_id, amount, status, _ in refunds:
        if status == "succeeded":
            succeeded[payment_id] += amount
        elif status in ("pending", "unknown"):
            open_refunds.append(payment_id)
    at_processor = defaultdict(Decimal)
    refund_txns = {row[3] for row in refunds if row[3]}
    for tx in processor_refunds:
        if tx["status"] != "voided":
            at_processor[tx["ref_trans_id"]] += Decimal(tx["amount"])
        if tx["trans_id"] not in refund_txns:
            problems.append({"trans_id": tx["trans_id"], "problem": "processor refund EasyPay does not know"})
    for payment_id, p in payments.items():
        if p["refunded"] > p["captured"]:
            problems.append({"payment": payment_id, "problem": f"refunded {p['refunded']} > captured {p['captured']}"})
        if succeeded[payment_id] != p["refunded"]:
            problems.append(
                {"payment": payment_id, "problem": f"refund rows {succeeded[payment_id]} != {p['refunded']}"}
            )
        if p["txn"]:
            tx = by_txn.get(p["txn"])
            processor_total = at_processor.get(p["txn"], Decimal(0))
            if processor_total != p["refunded"]:
                problems.append(
                    {"payment": payment_id, "problem": f"refunded {p['refunded']}, processor {processor_total}"}
                )
            if tx is not None and processor_total > Decimal(tx["settle_amount"]):
                problems.append({"payment": payment_id, "problem": "processor refunded more than it settled"})
    problems += [{"payment": pid, "problem": "refund still pending after reconciliation"} for pid in open_refunds]
    check("refunds <= captures, EasyPay == processor", len(payments) + len(processor_refunds), problems)

    # 5. idempotent replays returned the first payment
    problems = [
        r
        for r in book.replays
        if r["status"] not in (409, 503) and (r["id"] != r["first_id"] or r["replayed"] != "true")
    ]
    check("replayed Idempotency-Keys answer the first payment", len(book.replays), problems)

    # 6. every event delivered or listed as failed; the receiver got every delivered one
    rows = stack.sql(
        "SELECT e.id, e.type, d.status, d.attempt_count FROM webhooks_event e "
        "LEFT JOIN webhooks_eventdelivery d ON d.event_id = e.id"
    )
    received = stack.receiver_deliveries()
    received_ids = {d["event_id"] for d in received}
    problems = [{"event": e, "type": t, "problem": f"delivery {s}"} for e, t, s, _ in rows if s not in ("succeeded",)]
    problems = [p for p in problems if p["problem"] != "delivery failed"]  # failed is a listed outcome
    problems += [{"event": e, "problem": "succeeded but never received"} for e, _, s, _ in rows if s == "succeeded"]
    problems = [p for p in problems if not (p["problem"].startswith("succeeded") and p["event"] in received_ids)]
    problems += [{"event": d["event_id"], "problem": "bad signature"} for d in received if d["signature_ok"] is False]
    failed = [e for e, _, s, _ in rows if s == "failed"]
    check("every event delivered (or listed failed), signed", len(rows), problems)
    checks[-1]["failed_listed"] = failed

    # 7. no 500s, broken connections or non-JSON answers
    check("no 500 / broken connection / non-JSON answer", sum(book.counts.values()), book.unexpected)
    return checks


def print_table(report: dict) -> None:
    print()
    print(f"EasyPay soak {report['started_at']}  {report['seconds']}s x {report['threads']} clients")
    print(f"faults injected: {len(report['faults'])}")
    for fault in report["faults"]:
        print(f"  t={fault['at_s']:>6}s  {fault['fault']}{'' if fault['ok'] else '  (FAILED: ' + fault['error'] + ')'}")
    print(f"requests: {report['requests']}  payments: {report['payments']}  201s: {report['created_201']}")
    print("answers: " + ", ".join(f"{k}: {v}" for k, v in sorted(report["answers"].items())))
    print(f"reconcile passes: {report['settle']['reconcile_passes']}, drain {report['settle']['drain_seconds']}s")
    print()
    header = f"{'LEDGER CHECK':<66} {'checked':>8} {'mismatches':>10}"
    print(header)
    print("-" * len(header))
    for row in report["checks"]:
        print(f"{row['check']:<66} {row['checked']:>8} {row['mismatches']:>10}")
        for example in row["examples"]:
            print(f"    e.g. {json.dumps(example, default=str)[:200]}")
    print("-" * len(header))
    print(f"{'TOTAL MISMATCHES':<66} {'':>8} {report['mismatches']:>10}")
    print()


def main() -> int:
    seconds = min(env_int("SOAK_SECONDS", 120), SOAK_MAX_SECONDS)
    threads = max(1, env_int("SOAK_THREADS", 6))
    random.seed(env_int("SOAK_SEED", int(time.time())))
    started_at = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    book = Book()
    faults: list[dict] = []
    stack = Stack(tag="soak", gunicorn_threads=16, env={"FAULTS_RECONCILE_SECONDS": "15"})

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGINT, on_signal)
    stack.start()
    try:
        stop = threading.Event()
        started = time.monotonic()
        workers = [threading.Thread(target=client, args=(stack, book, stop), daemon=True) for _ in range(threads)]
        injector = threading.Thread(target=inject, args=(stack, seconds, started, stop, faults), daemon=True)
        for thread in [*workers, injector]:
            thread.start()
        log(f"soak: {threads} clients for {seconds}s")
        stop.wait(seconds)
        stop.set()
        for thread in [*workers, injector]:
            thread.join(90)
        if not stack.procs.alive("celery"):
            stack.start_celery()
        log("soak: load stopped; reconciling and draining webhooks")
        settle = settle_everything(stack)
        checks = ledger(stack, book)
        report = {
            "started_at": started_at,
            "seconds": seconds,
            "threads": threads,
            "faults": faults,
            "requests": sum(book.counts.values()),
            "answers": dict(book.counts),
            "payments": stack.sql("SELECT count(*) FROM payments_payment")[0][0],
            "created_201": len(book.created_201),
            "payment_statuses": dict(stack.sql("SELECT status, count(*) FROM payments_payment GROUP BY status")),
            "refunds": dict(stack.sql("SELECT status, count(*) FROM payments_refund GROUP BY status")),
            "events": stack.sql("SELECT count(*) FROM webhooks_event")[0][0],
            "processor_transactions": len(stack.emulator_transactions()),
            "settle": settle,
            "checks": checks,
            "mismatches": sum(c["mismatches"] for c in checks),
        }
        print_table(report)
        print(json.dumps(report, indent=2, default=str))
        if os.environ.get("SOAK_JSON"):
            Path(os.environ["SOAK_JSON"]).write_text(json.dumps(report, indent=2, default=str))
        failed = sum(1 for c in checks if c["mismatches"])
        print(f"soak ledger checks: {len(checks) - failed} passed, {failed} failed")  # the run's closing line
        return 1 if report["mismatches"] else 0
    except BaseException:
        stack.dump_logs()
        raise
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
