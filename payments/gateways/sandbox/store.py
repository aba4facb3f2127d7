"""The emulator's on-disk state: records as JSON rows in SQLite (``.data/anet-emulator.sqlite3`` under ``make run``)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from decimal import Decimal

from .records import (
    Batch,
    CustomerProfile,
    PaymentProfile,
    Record,
    StoredCard,
    Transaction,
)

# --- persistence ---------------------------------------------------------------------------------

_DECIMALS = {"amount", "auth_amount", "settle_amount", "refunded_amount"}
_TIMES = {"submitted_at", "updated_at", "settled_at"}


def _encode(record: Record) -> str:
    def convert(value: object) -> object:
        if isinstance(value, Decimal):
            return str(value)
        if isinstance(value, datetime):
            return value.isoformat()
        return value

    return json.dumps({k: convert(v) for k, v in asdict(record).items()})


def _decode(cls: type[Record], text: str) -> Record:
    data = json.loads(text)
    for key in list(data):
        if key in _DECIMALS:
            data[key] = Decimal(data[key])
        elif key in _TIMES:
            data[key] = datetime.fromisoformat(data[key])
        elif key == "card":
            data[key] = StoredCard(**data[key])
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class Loaded:
    """Every stored record, by kind (the store's ``kind`` column)."""

    transaction: list[Transaction] = field(default_factory=list)
    batch: list[Batch] = field(default_factory=list)
    customer: list[CustomerProfile] = field(default_factory=list)
    payment: list[PaymentProfile] = field(default_factory=list)


class _SQLiteStore:
    """Optional persistence: one JSON row per record, written inside the state lock."""

    KINDS: dict[str, type[Record]] = {
        "transaction": Transaction,
        "batch": Batch,
        "customer": CustomerProfile,
        "payment": PaymentProfile,
    }

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS records (kind TEXT, id TEXT, data TEXT, PRIMARY KEY (kind, id))")

    def save(self, records: Iterable[tuple[str, str, Record]]) -> None:
        rows = [(kind, key, _encode(record)) for kind, key, record in records]
        if rows:
            self._db.executemany("INSERT OR REPLACE INTO records (kind, id, data) VALUES (?, ?, ?)", rows)

    def load(self) -> Loaded:
        loaded = Loaded()
        for kind, data in self._db.execute("SELECT kind, data FROM records ORDER BY rowid"):
            getattr(loaded, kind).append(_decode(self.KINDS[kind], data))
        return loaded

    def clear(self) -> None:
        self._db.execute("DELETE FROM records")

    def close(self) -> None:
        self._db.close()
