"""The emulated merchant account: transactions, settlement batches and CIM profiles.

Everything here is plain Python (no XML, no HTTP) and thread-safe: one re-entrant lock guards all
reads and writes, so concurrent API calls see the same consistent account, and ids come from
counters that only go up (also across :meth:`SandboxState.reset`, so an id from an earlier test
never comes back).

Rules follow Authorize.Net's behaviour for its sandbox test cards; the README lists what is and is
not reproduced. Full card numbers are kept only for Authorize.Net's published test numbers (the
triggers need them) and never leave this module: transactions keep the masked number only.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from .cards import (
    ACCEPT_DESCRIPTORS,
    AUTHORIZED,
    AVS_BY_ZIP,
    BATCHED_AS_IS,
    CAPTURED,
    CENT,
    CVV_BY_CODE,
    CVV_DECLINE_CODE,
    DECLINE_ZIP,
    DECLINED,
    DEFAULT_DUPLICATE_WINDOW,
    GENERAL_ERROR,
    HELD,
    HELD_CARD,
    MAX_DUPLICATE_WINDOW,
    OPAQUE_CARD_LAST_FOUR,
    PROCESSOR_ERROR_CARD,
    REASONS,
    REFUND_PENDING,
    REFUND_SETTLED,
    SETTLED,
    SETTLING,
    TEST_CARD_NUMBERS,
    VOIDED,
    card_type,
    luhn_ok,
    money,
    parse_expiry,
)
from .profiles import ProfilesMixin
from .records import (
    Batch,
    CardInput,
    CustomerProfile,
    Event,
    PaymentProfile,
    ProfileAnswer,
    Record,
    StoredCard,
    Transaction,
    TransactionAnswer,
    TransactionRequest,
)
from .settlement import SettlementMixin
from .store import (
    _SQLiteStore,
)
from .transactions import TransactionsMixin

# What the emulator's other modules (and tests) import from here, as before the split.
__all__ = [
    "ACCEPT_DESCRIPTORS",
    "AUTHORIZED",
    "AVS_BY_ZIP",
    "BATCHED_AS_IS",
    "CAPTURED",
    "CENT",
    "CVV_BY_CODE",
    "CVV_DECLINE_CODE",
    "DECLINED",
    "DECLINE_ZIP",
    "DEFAULT_DUPLICATE_WINDOW",
    "GENERAL_ERROR",
    "HELD",
    "HELD_CARD",
    "MAX_DUPLICATE_WINDOW",
    "OPAQUE_CARD_LAST_FOUR",
    "PROCESSOR_ERROR_CARD",
    "REASONS",
    "REFUND_PENDING",
    "REFUND_SETTLED",
    "SETTLED",
    "SETTLING",
    "TEST_CARD_NUMBERS",
    "VOIDED",
    "Batch",
    "CardInput",
    "CustomerProfile",
    "Event",
    "PaymentProfile",
    "ProfileAnswer",
    "SandboxState",
    "StoredCard",
    "Transaction",
    "TransactionAnswer",
    "TransactionRequest",
    "card_type",
    "luhn_ok",
    "money",
    "parse_expiry",
    "utcnow",
]

# --- the account ---------------------------------------------------------------------------------


def utcnow() -> datetime:
    return datetime.now(UTC)


class SandboxState(TransactionsMixin, SettlementMixin, ProfilesMixin):
    def __init__(
        self,
        *,
        api_login_id: str,
        transaction_key: str,
        settle_delay_seconds: float = 0.0,
        db_path: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        on_events: Callable[[list[Event]], None] | None = None,
    ) -> None:
        self.api_login_id = api_login_id
        self.transaction_key = transaction_key
        self.settle_delay_seconds = settle_delay_seconds
        self.on_events = on_events
        self._clock = clock
        self._lock = threading.RLock()
        self._store = _SQLiteStore(db_path) if db_path else None
        self._next_trans = 60_000_000_000
        self._next_batch = 10_000_000
        self._next_profile = 500_000_000
        self._next_payment_profile = 510_000_000
        self._clear()
        if self._store is not None:
            self._load(self._store)

    # bookkeeping -------------------------------------------------------------------------------

    def _clear(self) -> None:
        self.transactions: dict[str, Transaction] = {}
        self._duplicates: dict[tuple, Transaction] = {}  # the newest transaction per duplicate key
        self._settleable: dict[str, Transaction] = {}  # what the next batch takes (SettlementMixin._track)
        self._positions: dict[str, int] = {}  # each transaction id's place in ``transactions``
        self._unbatched: dict[str, Transaction] = {}  # every transaction not in a batch yet
        self._batch_members: dict[str, list[Transaction]] = {}  # what each batch took, in order
        self.batches: dict[str, Batch] = {}
        self.customers: dict[str, CustomerProfile] = {}
        self._customer_positions: dict[str, int] = {}  # ProfilesMixin._index_customer keeps these four
        self._customers_by_merchant_id: dict[str, CustomerProfile] = {}
        self._customers_by_contact: dict[tuple[str, str], CustomerProfile] = {}  # (email, description)
        self._customers_by_email: dict[str, CustomerProfile] = {}
        self.payment_profiles: dict[str, PaymentProfile] = {}
        self._dirty: list[tuple[str, str, Record]] = []
        self._events: list[Event] = []

    def _load(self, store: _SQLiteStore) -> None:
        loaded = store.load()
        self.transactions = {t.trans_id: t for t in loaded.transaction}
        self._duplicates = {t.duplicate_key: t for t in sorted(loaded.transaction, key=lambda t: t.submitted_at)}
        for tx in self.transactions.values():
            self._track(tx)
            if tx.batch_id:
                self._batch_members.setdefault(tx.batch_id, []).append(tx)
        self.batches = {b.batch_id: b for b in loaded.batch}
        self.customers = {c.customer_profile_id: c for c in loaded.customer}
        for profile in self.customers.values():
            self._index_customer(profile)
        self.payment_profiles = {p.payment_profile_id: p for p in loaded.payment}
        for ids, attr in (
            (self.transactions, "_next_trans"),
            (self.batches, "_next_batch"),
            (self.customers, "_next_profile"),
            (self.payment_profiles, "_next_payment_profile"),
        ):
            if ids:
                setattr(self, attr, max(getattr(self, attr), *(int(i) for i in ids)))

    def _new_id(self, attr: str) -> str:
        value = getattr(self, attr) + 1
        setattr(self, attr, value)
        return str(value)

    def _touch(self, kind: str, key: str, record: Record) -> None:
        self._dirty.append((kind, key, record))
        if isinstance(record, Transaction):
            self._track(record)

    def _commit(self) -> list[Event]:
        """Persist what changed and hand back the events to publish (outside the lock)."""
        if self._store is not None:
            self._store.save(self._dirty)
        events, self._events, self._dirty = self._events, [], []
        return events

    def _publish(self, events: list[Event]) -> None:
        if events and self.on_events is not None:
            self.on_events(events)

    def now(self) -> datetime:
        return self._clock()

    def reset(self) -> None:
        with self._lock:
            self._clear()
            if self._store is not None:
                self._store.clear()

    def close(self) -> None:
        if self._store is not None:
            with self._lock:
                self._store.close()

    def authenticate(self, name: str, key: str) -> bool:
        return secrets.compare_digest(name.encode(), self.api_login_id.encode()) and secrets.compare_digest(
            key.encode(), self.transaction_key.encode()
        )
