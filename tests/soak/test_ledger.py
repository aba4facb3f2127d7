"""The soak's LEDGER CHECK itself: consistent books give 0 mismatches, and each kind of damage is caught.

Runs in ``make test`` (no processes, no database): the stack is a fake answering the checker's reads.
"""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from tests.soak.soak import Book, ledger

D = Decimal


class FakeReply:
    def __init__(self, status: int, body: dict | None = None) -> None:
        self.status = status
        self.body = body if body is not None else {"data": {}}
        self.raw = b"{}"
        self.error = None
        self.headers = {"content-type": "application/json"}
        self.is_json = True

    @property
    def data(self):
        return self.body.get("data")


class FakeStack:
    def __init__(self) -> None:
        # payments: id, status, amount, captured, refunded, txn, reference
        self.payments = [
            ["p1", "captured", D("10.00"), D("10.00"), D("0.00"), "t1", "r1"],
            ["p2", "partially_refunded", D("20.00"), D("20.00"), D("5.00"), "t2", "r2"],
            ["p3", "authorized", D("30.00"), D("0.00"), D("0.00"), "t3", "r3"],
            ["p4", "failed", D("40.00"), D("0.00"), D("0.00"), "", "r4"],
        ]
        self.refunds = [["p2", D("5.00"), "succeeded", "t5"]]
        self.transactions = [
            self._tx("t1", "authCaptureTransaction", "settledSuccessfully", "10.00", "10.00", "r1"),
            self._tx("t2", "authCaptureTransaction", "settledSuccessfully", "20.00", "20.00", "r2"),
            self._tx("t3", "authOnlyTransaction", "authorizedPendingCapture", "30.00", "0.00", "r3"),
            self._tx("t5", "refundTransaction", "refundSettledSuccessfully", "5.00", "5.00", "x5", ref="t2"),
        ]
        self.events = [["e1", "payment.captured", "succeeded", 1], ["e2", "payment.refunded", "succeeded", 1]]
        self.received = [{"event_id": "e1", "signature_ok": True}, {"event_id": "e2", "signature_ok": True}]

    @staticmethod
    def _tx(trans_id, kind, status, amount, settle, invoice, ref=""):
        return {
            "trans_id": trans_id,
            "transaction_type": kind,
            "status": status,
            "amount": amount,
            "settle_amount": settle,
            "invoice_number": invoice,
            "ref_trans_id": ref,
        }

    def sql(self, query: str, params=None):
        if "FROM payments_payment" in query:
            return [tuple(p) for p in self.payments]
        if "FROM payments_refund" in query:
            return [tuple(r) for r in self.refunds]
        if "FROM webhooks_event" in query:
            return [tuple(e) for e in self.events]
        raise AssertionError(f"unexpected query {query}")

    def emulator_transactions(self):
        return copy.deepcopy(self.transactions)

    def receiver_deliveries(self):
        return list(self.received)


def consistent_book() -> Book:
    book = Book()
    book.created_201 = {"p1": D("10.00"), "p2": D("20.00"), "p3": D("30.00")}
    book.replays = [{"key": "k1", "first_status": 201, "first_id": "p1", "status": 201, "id": "p1", "replayed": "true"}]
    book.counts.update({"create 201": 3, "get 200": 5})
    return book


def mismatches(stack, book) -> dict[str, int]:
    return {row["check"]: row["mismatches"] for row in ledger(stack, book) if row["mismatches"]}


def test_consistent_books_have_no_mismatch():
    checks = ledger(FakeStack(), consistent_book())
    assert sum(c["mismatches"] for c in checks) == 0, checks
    assert len(checks) == 7


def _orphan(s):
    s.transactions.append(FakeStack._tx("t9", "authCaptureTransaction", "settledSuccessfully", "9.00", "9.00", "zz"))


def _duplicate(s):
    s.transactions.append(FakeStack._tx("t8", "authCaptureTransaction", "settledSuccessfully", "10.00", "10.00", "r1"))


def _amount(s):
    s.transactions[0]["amount"] = "11.00"


def _status(s):
    s.transactions[2]["status"] = "voided"


def _over_refund(s):
    refund = FakeStack._tx("t7", "refundTransaction", "refundPendingSettlement", "1.00", "1.00", "x7", ref="t1")
    s.transactions.append(refund)


def _pending(s):
    s.payments[3][1] = "pending"


def _undelivered(s):
    s.events.append(["e3", "payment.voided", "pending", 3])


def _lost_delivery(s):
    s.received = s.received[:1]


@pytest.mark.parametrize(
    ("damage", "check"),
    [
        (_orphan, "every processor charge is a known payment (no orphan/duplicate)"),
        (_duplicate, "every processor charge is a known payment (no orphan/duplicate)"),
        (_amount, "201 payments exist once at the processor, same amount"),
        (_status, "payment status and captured amount agree with the processor"),
        (_over_refund, "refunds <= captures, EasyPay == processor"),
        (_pending, "payment status and captured amount agree with the processor"),
        (_undelivered, "every event delivered (or listed failed), signed"),
        (_lost_delivery, "every event delivered (or listed failed), signed"),
    ],
)
def test_each_kind_of_damage_is_a_mismatch(damage, check):
    stack = FakeStack()
    damage(stack)
    found = mismatches(stack, consistent_book())
    assert check in found, found


def test_a_replay_answering_another_payment_is_a_mismatch():
    book = consistent_book()
    book.replays.append({"key": "k2", "first_status": 201, "first_id": "p2", "status": 201, "id": "p9", "replayed": ""})
    assert "replayed Idempotency-Keys answer the first payment" in mismatches(FakeStack(), book)


def test_a_500_answer_is_a_mismatch():
    book = consistent_book()
    book.note("create", FakeReply(500, {"error": {"code": "internal_error"}}))
    assert "no 500 / broken connection / non-JSON answer" in mismatches(FakeStack(), book)


def test_a_failed_delivery_is_listed_not_a_mismatch():
    stack = FakeStack()
    stack.events.append(["e4", "payment.voided", "failed", 4])
    checks = ledger(stack, consistent_book())
    assert sum(c["mismatches"] for c in checks) == 0
    assert checks[5]["failed_listed"] == ["e4"]
