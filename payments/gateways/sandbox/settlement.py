"""The emulated account's settlement batches and its reads."""

from __future__ import annotations

from datetime import datetime, timedelta

from .cards import (
    BATCHED_AS_IS,
    HELD,
    SETTLING,
)
from .host import StateHost
from .records import (
    Batch,
    Transaction,
)


class SettlementMixin(StateHost):
    """Part of :class:`~.state.SandboxState` (its lock, records and bookkeeping)."""

    # settlement ----------------------------------------------------------------------------------

    def _track(self, tx: Transaction) -> None:
        """Keep the settleable index right after ``tx`` was recorded or changed (``_touch`` calls this).

        A batch takes every transaction without a batch whose status settles (SETTLING) or is swept in as
        is (BATCHED_AS_IS). Those are kept by id in ``_settleable``, so settling looks only at them and
        not at every transaction ever stored; ``_unbatched`` holds every transaction without a batch (the
        unsettled list). ``_positions`` (each id's place in ``transactions``, given the first time it is
        seen, which is when it is recorded or loaded) keeps batches and lists in that order.
        """
        self._positions.setdefault(tx.trans_id, len(self._positions))
        if not tx.batch_id and (tx.status in SETTLING or tx.status in BATCHED_AS_IS):
            self._settleable[tx.trans_id] = tx
        else:
            self._settleable.pop(tx.trans_id, None)
        if tx.batch_id:
            self._unbatched.pop(tx.trans_id, None)
        else:
            self._unbatched[tx.trans_id] = tx

    def _in_order(self, rows: list[Transaction]) -> list[Transaction]:
        """``rows`` in the account's order (``transactions``'), the order a scan of it gives."""
        return sorted(rows, key=lambda tx: self._positions[tx.trans_id])

    def _settle(self, *, force: bool) -> Batch | None:
        if not self._settleable:
            return None
        now = self.now()
        cutoff = now - timedelta(seconds=max(self.settle_delay_seconds, 0))
        due = [tx for tx in self._settleable.values() if force or tx.updated_at <= cutoff]
        if not due:
            return None
        due = self._in_order(due)
        batch = Batch(batch_id=self._new_id("_next_batch"), settled_at=now)
        self.batches[batch.batch_id] = batch
        self._batch_members[batch.batch_id] = due
        self._touch("batch", batch.batch_id, batch)
        for tx in due:
            tx.status = SETTLING.get(tx.status, tx.status)
            tx.batch_id = batch.batch_id
            self._touch("transaction", tx.trans_id, tx)
        return batch

    def settle(self, *, force: bool = True) -> Batch | None:
        """Close a batch now (force) or only with what has waited the settle delay."""
        with self._lock:
            batch = self._settle(force=force)
            self._commit()
        return batch

    # reads ---------------------------------------------------------------------------------------

    def transaction(self, trans_id: str) -> Transaction | None:
        with self._lock:
            return self.transactions.get(trans_id)

    def unsettled(self, *, pending_approval_only: bool = False) -> list[Transaction]:
        with self._lock:
            return self._in_order(
                [tx for tx in self._unbatched.values() if (tx.status == HELD if pending_approval_only else True)]
            )

    def settled_batches(self, first: datetime, last: datetime) -> list[Batch]:
        with self._lock:
            return sorted(
                (b for b in self.batches.values() if first <= b.settled_at <= last), key=lambda b: b.settled_at
            )

    def batch_transactions(self, batch_id: str) -> list[Transaction] | None:
        with self._lock:
            if batch_id not in self.batches:
                return None
            # what the batch took, less any transaction whose id has since been handed out again
            members = self._batch_members.get(batch_id, [])
            return [tx for tx in members if tx.batch_id == batch_id and self.transactions.get(tx.trans_id) is tx]

    def batch(self, batch_id: str) -> Batch | None:
        with self._lock:
            return self.batches.get(batch_id)

    def snapshot(self) -> list[dict]:
        with self._lock:
            return [tx.public() for tx in self.transactions.values()]
