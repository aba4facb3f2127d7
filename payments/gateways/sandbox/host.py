"""What the account's parts (transactions, settlement, profiles) use of :class:`~.state.SandboxState`.

Declarations only, for the type checker: the state sets these attributes in ``__init__``/``_clear`` and
defines the bookkeeping methods; the cross-part methods are defined by the part named beside them.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from .records import (
        Batch,
        CustomerProfile,
        Event,
        PaymentProfile,
        Record,
        StoredCard,
        Transaction,
        TransactionAnswer,
        TransactionRequest,
    )


class StateHost:
    settle_delay_seconds: float
    _lock: threading.RLock
    transactions: dict[str, Transaction]
    _duplicates: dict[tuple, Transaction]
    _settleable: dict[str, Transaction]
    _positions: dict[str, int]
    _unbatched: dict[str, Transaction]
    _batch_members: dict[str, list[Transaction]]
    batches: dict[str, Batch]
    customers: dict[str, CustomerProfile]
    _customer_positions: dict[str, int]
    _customers_by_merchant_id: dict[str, CustomerProfile]
    _customers_by_contact: dict[tuple[str, str], CustomerProfile]
    _customers_by_email: dict[str, CustomerProfile]
    payment_profiles: dict[str, PaymentProfile]
    _events: list[Event]

    if TYPE_CHECKING:
        # bookkeeping (SandboxState)
        def now(self) -> datetime: ...
        def _new_id(self, attr: str) -> str: ...
        def _touch(self, kind: str, key: str, record: Record) -> None: ...
        def _commit(self) -> list[Event]: ...
        def _publish(self, events: list[Event]) -> None: ...

        # SettlementMixin
        def _track(self, tx: Transaction) -> None: ...
        def _settle(self, *, force: bool) -> Batch | None: ...

        # TransactionsMixin
        def _payment_card(self, req: TransactionRequest) -> StoredCard | TransactionAnswer: ...
        def _decide(self, card: StoredCard, card_code: str) -> TransactionAnswer: ...
