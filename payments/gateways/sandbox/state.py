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

import json
import secrets
import sqlite3
import string
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# --- published sandbox test data -----------------------------------------------------------------

TEST_CARD_NUMBERS = frozenset(
    {
        "4111111111111111",
        "4242424242424242",
        "4007000000027",
        "4012888818888",
        "5424000000000015",
        "2223000010309703",
        "2223000010309711",
        "370000000000002",
        "6011000000000012",
        "3088000000000017",
        "38000000000006",
    }
)
HELD_CARD = "4007000000027"  # stands in for a fraud filter set to "hold for review"
PROCESSOR_ERROR_CARD = "4012888818888"  # Authorize.Net's own example for reason 19
DECLINE_ZIP = "46282"
AVS_BY_ZIP = {
    "46201": "A",
    "46203": "E",
    "46204": "G",
    "46205": "N",
    "46206": "P",
    "46207": "R",
    "46208": "S",
    "46209": "U",
    "46211": "W",
    "46214": "X",
    "46217": "Z",
}
CVV_BY_CODE = {"900": "M", "901": "N", "902": "S", "903": "U", "904": "P"}
CVV_DECLINE_CODE = "901"  # the merchant's card-code filter rejects N (reason 65)
ACCEPT_DESCRIPTORS = frozenset(
    {
        "COMMON.ACCEPT.INAPP.PAYMENT",
        "COMMON.APPLE.INAPP.PAYMENT",
        "COMMON.GOOGLE.INAPP.PAYMENT",
        "COMMON.VCO.ONLINE.PAYMENT",
    }
)
OPAQUE_CARD_LAST_FOUR = "1111"  # what a decrypted Accept.js nonce stands for here (a Visa)

# Response reason texts as Authorize.Net words them (double space in 19 included).
REASONS = {
    1: "This transaction has been approved.",
    2: "This transaction has been declined.",
    5: "A valid amount is required.",
    6: "The credit card number is invalid.",
    7: "The credit card expiration date is invalid.",
    8: "The credit card has expired.",
    11: "A duplicate transaction has been submitted.",
    16: "The transaction cannot be found.",
    19: "An error occurred during processing.  Please try again.",
    33: "Credit card number cannot be left blank.",
    47: "The amount requested for settlement cannot be greater than the original amount authorized.",
    54: "The referenced transaction does not meet the criteria for issuing a credit.",
    55: "The sum of credits against the referenced transaction would exceed original debit amount.",
    65: "This transaction has been declined.",
    78: "The card code is invalid.",
    252: "Your order has been received. Thank you for your business!",
    310: "This transaction has already been voided.",
    311: "This transaction has already been captured.",
}

# transactionStatus values used here (a subset of the 24 in the XSD)
AUTHORIZED = "authorizedPendingCapture"
CAPTURED = "capturedPendingSettlement"
SETTLED = "settledSuccessfully"
REFUND_PENDING = "refundPendingSettlement"
REFUND_SETTLED = "refundSettledSuccessfully"
VOIDED = "voided"
DECLINED = "declined"
HELD = "FDSPendingReview"
GENERAL_ERROR = "generalError"
SETTLING = {CAPTURED: SETTLED, REFUND_PENDING: REFUND_SETTLED}  # what a batch turns them into
BATCHED_AS_IS = frozenset({VOIDED, DECLINED, GENERAL_ERROR})  # swept into the batch unchanged

DEFAULT_DUPLICATE_WINDOW = 120  # seconds, when the request sends no duplicateWindow
MAX_DUPLICATE_WINDOW = 28800
CENT = Decimal("0.01")


def luhn_ok(number: str) -> bool:
    if not number.isdigit() or not 13 <= len(number) <= 19:
        return False
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def card_type(number: str) -> str:
    """Authorize.Net's accountType name for a card number."""
    if number.startswith("4"):
        return "Visa"
    if number[:2] in {"34", "37"}:
        return "AmericanExpress"
    if number[:2] in {"51", "52", "53", "54", "55"} or 2221 <= int(number[:4] or 0) <= 2720:
        return "MasterCard"
    if number.startswith(("6011", "65")) or 644 <= int(number[:3] or 0) <= 649:
        return "Discover"
    if 3528 <= int(number[:4] or 0) <= 3589 or number[:4] in {"3088", "3096", "3112", "3158", "3337"}:
        return "JCB"
    if number[:2] in {"36", "38"} or 300 <= int(number[:3] or 0) <= 305:
        return "DinersClub"
    return "Visa"


def parse_expiry(text: str) -> tuple[int, int] | None:
    """(year, month) from YYYY-MM, MMYY, MM/YY or MMYYYY."""
    text = text.strip()
    try:
        if len(text) == 7 and text[4] == "-":
            year, month = int(text[:4]), int(text[5:])
        elif len(text) == 4 and text.isdigit():
            year, month = 2000 + int(text[2:]), int(text[:2])
        elif len(text) == 5 and text[2] == "/":
            year, month = 2000 + int(text[3:]), int(text[:2])
        elif len(text) == 6 and text.isdigit():
            year, month = int(text[2:]), int(text[:2])
        else:
            return None
    except ValueError:
        return None
    return (year, month) if 1 <= month <= 12 else None


def money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def _auth_code() -> str:
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(6))


def _network_trans_id() -> str:
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(23))


# --- records -------------------------------------------------------------------------------------


@dataclass
class StoredCard:
    last_four: str
    brand: str  # accountType: Visa, MasterCard, AmericanExpress, Discover, JCB, DinersClub
    expiry: str  # YYYY-MM
    zip: str = ""
    number: str | None = None  # only for published test numbers: the triggers need it

    @property
    def masked(self) -> str:
        return "XXXX" + self.last_four


@dataclass
class Transaction:
    trans_id: str
    transaction_type: str  # authOnlyTransaction, authCaptureTransaction, refundTransaction
    status: str
    response_code: int
    reason_code: int
    reason_text: str
    amount: Decimal  # requested
    auth_amount: Decimal
    settle_amount: Decimal
    submitted_at: datetime
    updated_at: datetime  # last status change: a settlement delay counts from here
    account_number: str  # XXXX1111
    account_type: str
    auth_code: str = ""
    avs: str = ""
    cvv: str = ""
    currency: str = "USD"
    invoice_number: str = ""
    description: str = ""
    ref_id: str = ""
    ref_trans_id: str = ""
    customer_id: str = ""
    customer_email: str = ""
    zip: str = ""
    customer_profile_id: str = ""
    payment_profile_id: str = ""
    network_trans_id: str = ""
    batch_id: str = ""
    refunded_amount: Decimal = Decimal("0.00")
    duplicate_window: int | None = None  # as the request sent it (None: not sent)

    @property
    def last_four(self) -> str:
        return self.account_number[-4:]

    def public(self) -> dict:
        """JSON-friendly view for GET /_emulator/transactions (masked card only, like the real thing)."""
        data = asdict(self)
        for key in ("amount", "auth_amount", "settle_amount", "refunded_amount"):
            data[key] = money(data[key])
        for key in ("submitted_at", "updated_at"):
            data[key] = data[key].isoformat().replace("+00:00", "Z")
        return data


@dataclass
class Batch:
    batch_id: str
    settled_at: datetime
    state: str = "settledSuccessfully"


@dataclass
class PaymentProfile:
    payment_profile_id: str
    customer_profile_id: str
    card: StoredCard
    customer_type: str = "individual"
    default: bool = False


@dataclass
class CustomerProfile:
    customer_profile_id: str
    merchant_customer_id: str = ""
    email: str = ""
    description: str = ""
    payment_profile_ids: list[str] = field(default_factory=list)


# --- requests and answers ------------------------------------------------------------------------


@dataclass
class CardInput:
    number: str
    expiry: str
    card_code: str = ""


@dataclass
class TransactionRequest:
    transaction_type: str
    amount_text: str = ""
    currency: str = "USD"
    card: CardInput | None = None
    opaque_descriptor: str = ""
    opaque_value: str = ""
    customer_profile_id: str = ""
    payment_profile_id: str = ""
    profile_card_code: str = ""
    ref_trans_id: str = ""
    invoice_number: str = ""
    description: str = ""
    customer_id: str = ""
    customer_email: str = ""
    zip: str = ""
    ref_id: str = ""
    duplicate_window: int | None = None


@dataclass
class TransactionAnswer:
    """What createTransactionResponse carries; ``error`` alone means no transactionResponse at all."""

    response_code: int = 0
    reason_code: int = 0
    trans_id: str = "0"
    ref_trans_id: str = ""
    auth_code: str = ""
    avs: str = ""
    cvv: str = ""
    account_number: str = ""
    account_type: str = ""
    network_trans_id: str = ""
    error: tuple[str, str] | None = None  # (E000xx, text) for failures before any transaction

    @property
    def reason_text(self) -> str:
        return REASONS.get(self.reason_code, "")


@dataclass
class ProfileAnswer:
    customer_profile_id: str = ""
    payment_profile_ids: list[str] = field(default_factory=list)
    validation: list[str] = field(default_factory=list)  # AIM-style direct responses
    error: tuple[str, str] | None = None


@dataclass
class Event:
    """A webhook-worthy change, snapshotted under the state lock when it happens."""

    event_type: str  # without the net.authorize. prefix, e.g. payment.authcapture.created
    transaction: Transaction
    amount: Decimal
    snapshot: dict = field(init=False)

    def __post_init__(self) -> None:
        tx = self.transaction
        self.snapshot = {
            "id": tx.trans_id,
            "responseCode": tx.response_code,
            "authCode": tx.auth_code,
            "avsResponse": tx.avs,
            "authAmount": self.amount,
            "invoiceNumber": tx.invoice_number,
            "merchantReferenceId": tx.ref_id,
            "status": tx.status,
        }


# --- persistence ---------------------------------------------------------------------------------

_DECIMALS = {"amount", "auth_amount", "settle_amount", "refunded_amount"}
_TIMES = {"submitted_at", "updated_at", "settled_at"}


def _encode(record: object) -> str:
    def convert(value: object) -> object:
        if isinstance(value, Decimal):
            return str(value)
        if isinstance(value, datetime):
            return value.isoformat()
        return value

    return json.dumps({k: convert(v) for k, v in asdict(record).items()})


def _decode(cls: type, text: str) -> object:
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


class _SQLiteStore:
    """Optional persistence: one JSON row per record, written inside the state lock."""

    KINDS = {"transaction": Transaction, "batch": Batch, "customer": CustomerProfile, "payment": PaymentProfile}

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS records (kind TEXT, id TEXT, data TEXT, PRIMARY KEY (kind, id))")

    def save(self, records: Iterable[tuple[str, str, object]]) -> None:
        rows = [(kind, key, _encode(record)) for kind, key, record in records]
        if rows:
            self._db.executemany("INSERT OR REPLACE INTO records (kind, id, data) VALUES (?, ?, ?)", rows)

    def load(self) -> dict[str, list[object]]:
        loaded: dict[str, list[object]] = {kind: [] for kind in self.KINDS}
        for kind, data in self._db.execute("SELECT kind, data FROM records ORDER BY rowid"):
            loaded[kind].append(_decode(self.KINDS[kind], data))
        return loaded

    def clear(self) -> None:
        self._db.execute("DELETE FROM records")

    def close(self) -> None:
        self._db.close()


# --- the account ---------------------------------------------------------------------------------


def utcnow() -> datetime:
    return datetime.now(UTC)


class SandboxState:
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
            self._load()

    # bookkeeping -------------------------------------------------------------------------------

    def _clear(self) -> None:
        self.transactions: dict[str, Transaction] = {}
        self.batches: dict[str, Batch] = {}
        self.customers: dict[str, CustomerProfile] = {}
        self.payment_profiles: dict[str, PaymentProfile] = {}
        self._dirty: list[tuple[str, str, object]] = []
        self._events: list[Event] = []

    def _load(self) -> None:
        loaded = self._store.load()
        self.transactions = {t.trans_id: t for t in loaded["transaction"]}
        self.batches = {b.batch_id: b for b in loaded["batch"]}
        self.customers = {c.customer_profile_id: c for c in loaded["customer"]}
        self.payment_profiles = {p.payment_profile_id: p for p in loaded["payment"]}
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

    def _touch(self, kind: str, key: str, record: object) -> None:
        self._dirty.append((kind, key, record))

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

    # transactions --------------------------------------------------------------------------------

    def create_transaction(self, req: TransactionRequest) -> TransactionAnswer:
        with self._lock:
            handler = {
                "authCaptureTransaction": self._authorize,
                "authOnlyTransaction": self._authorize,
                "priorAuthCaptureTransaction": self._prior_auth_capture,
                "refundTransaction": self._refund,
                "voidTransaction": self._void,
            }[req.transaction_type]
            answer = handler(req)
            if self.settle_delay_seconds <= 0:
                self._settle(force=True)
            events = self._commit()
        self._publish(events)
        return answer

    def _record(self, req: TransactionRequest, card: StoredCard, answer: TransactionAnswer, **values) -> Transaction:
        now = self.now()
        record = {
            "trans_id": self._new_id("_next_trans"),
            "transaction_type": req.transaction_type,
            "submitted_at": now,
            "updated_at": now,
            "account_number": card.masked,
            "account_type": card.brand,
            "currency": req.currency or "USD",
            "invoice_number": req.invoice_number,
            "description": req.description,
            "ref_id": req.ref_id,
            "customer_id": req.customer_id,
            "customer_email": req.customer_email,
            "zip": card.zip,
            "customer_profile_id": req.customer_profile_id,
            "payment_profile_id": req.payment_profile_id,
            "duplicate_window": req.duplicate_window,
            "response_code": answer.response_code,
            "reason_code": answer.reason_code,
            "reason_text": answer.reason_text,
            "auth_code": answer.auth_code,
            "avs": answer.avs,
            "cvv": answer.cvv,
            "network_trans_id": answer.network_trans_id,
        }
        tx = Transaction(**{**record, **values})
        self.transactions[tx.trans_id] = tx
        self._touch("transaction", tx.trans_id, tx)
        answer.trans_id = tx.trans_id
        return tx

    def _save(self, tx: Transaction) -> None:
        tx.updated_at = self.now()
        self._touch("transaction", tx.trans_id, tx)

    @staticmethod
    def _amount(text: str) -> Decimal | None:
        try:
            value = Decimal(text)
        except (InvalidOperation, TypeError):
            return None
        if not value.is_finite() or value < 0:
            return None
        return value.quantize(CENT, rounding=ROUND_HALF_UP)

    def _payment_card(self, req: TransactionRequest) -> StoredCard | TransactionAnswer:
        """The card a request pays with, or the answer refusing it."""
        if req.customer_profile_id or req.payment_profile_id:
            profile = self.payment_profiles.get(req.payment_profile_id)
            if profile is None or profile.customer_profile_id != req.customer_profile_id:
                return TransactionAnswer(
                    error=("E00040", "Customer Profile ID or Customer Payment Profile ID not found.")
                )
            return profile.card
        if req.opaque_value or req.opaque_descriptor:
            if req.opaque_descriptor not in ACCEPT_DESCRIPTORS or req.opaque_value.lower().startswith("invalid"):
                return TransactionAnswer(error=("E00114", "Invalid OTS Token."))
            expiry = f"{self.now().year + 3}-12"
            return StoredCard(OPAQUE_CARD_LAST_FOUR, "Visa", expiry, req.zip)
        if req.card is None or not req.card.number:
            return TransactionAnswer(response_code=3, reason_code=33)
        number = req.card.number.replace(" ", "")
        if not luhn_ok(number):
            return TransactionAnswer(response_code=3, reason_code=6)
        expiry = parse_expiry(req.card.expiry)
        if expiry is None:
            return TransactionAnswer(response_code=3, reason_code=7)
        now = self.now()
        if expiry < (now.year, now.month):
            return TransactionAnswer(response_code=3, reason_code=8)
        brand = card_type(number)
        code = req.card.card_code
        if code and (not code.isdigit() or len(code) != (4 if brand == "AmericanExpress" else 3)):
            return TransactionAnswer(response_code=3, reason_code=78)
        stored_number = number if number in TEST_CARD_NUMBERS else None
        return StoredCard(number[-4:], brand, f"{expiry[0]:04d}-{expiry[1]:02d}", req.zip, stored_number)

    def _decide(self, card: StoredCard, card_code: str) -> TransactionAnswer:
        """The processor's verdict for an authorization on this card (the sandbox's triggers)."""
        avs = AVS_BY_ZIP.get(card.zip, "Y") if card.zip else "P"
        cvv = CVV_BY_CODE.get(card_code, "M") if card_code else ""
        base = {"avs": avs, "cvv": cvv, "account_number": card.masked, "account_type": card.brand}
        if card.number == PROCESSOR_ERROR_CARD:
            return TransactionAnswer(response_code=3, reason_code=19, **base)
        if card.zip == DECLINE_ZIP:
            return TransactionAnswer(response_code=2, reason_code=2, auth_code="000000", **base)
        if card_code == CVV_DECLINE_CODE:
            return TransactionAnswer(response_code=2, reason_code=65, auth_code="000000", **base)
        if card.number == HELD_CARD:
            return TransactionAnswer(response_code=4, reason_code=252, auth_code=_auth_code(), **base)
        return TransactionAnswer(
            response_code=1, reason_code=1, auth_code=_auth_code(), network_trans_id=_network_trans_id(), **base
        )

    def _duplicate_of(self, req: TransactionRequest, card: StoredCard, amount: Decimal) -> Transaction | None:
        window = (
            DEFAULT_DUPLICATE_WINDOW
            if req.duplicate_window is None
            else min(req.duplicate_window, MAX_DUPLICATE_WINDOW)
        )
        if window <= 0:
            return None
        since = self.now() - timedelta(seconds=window)
        for tx in reversed(self.transactions.values()):
            if tx.submitted_at < since:
                break
            if (
                tx.transaction_type == req.transaction_type
                and tx.amount == amount
                and tx.account_number == card.masked
                and tx.invoice_number == req.invoice_number
                and tx.customer_id == req.customer_id
                and tx.zip == card.zip
                and tx.ref_trans_id == req.ref_trans_id
            ):
                return tx
        return None

    def _authorize(self, req: TransactionRequest) -> TransactionAnswer:
        amount = self._amount(req.amount_text)
        if amount is None or amount <= 0:
            return TransactionAnswer(response_code=3, reason_code=5)
        card = self._payment_card(req)
        if isinstance(card, TransactionAnswer):
            return card
        if self._duplicate_of(req, card, amount) is not None:
            return TransactionAnswer(
                response_code=3, reason_code=11, account_number=card.masked, account_type=card.brand
            )
        card_code = req.card.card_code if req.card is not None else req.profile_card_code
        answer = self._decide(card, card_code)
        capture = req.transaction_type == "authCaptureTransaction"
        status = {
            1: CAPTURED if capture else AUTHORIZED,
            2: DECLINED,
            3: GENERAL_ERROR,
            4: HELD,
        }[answer.response_code]
        tx = self._record(
            req,
            card,
            answer,
            status=status,
            amount=amount,
            auth_amount=amount,
            settle_amount=amount if status == CAPTURED else Decimal("0.00"),
        )
        if status == HELD:
            self._events.append(Event("payment.fraud.held", tx, amount))
        else:
            kind = "authcapture" if capture else "authorization"
            self._events.append(Event(f"payment.{kind}.created", tx, amount))
        return answer

    def _reply_for(self, tx: Transaction, response_code: int, reason_code: int) -> TransactionAnswer:
        return TransactionAnswer(
            response_code=response_code,
            reason_code=reason_code,
            trans_id=tx.trans_id,
            ref_trans_id=tx.trans_id,
            auth_code=tx.auth_code if response_code == 1 else "",
            account_number=tx.account_number,
            account_type=tx.account_type,
        )

    def _prior_auth_capture(self, req: TransactionRequest) -> TransactionAnswer:
        tx = self.transactions.get(req.ref_trans_id)
        if tx is None or tx.transaction_type == "refundTransaction":
            return TransactionAnswer(response_code=3, reason_code=16)
        if tx.status in (CAPTURED, SETTLED):
            return self._reply_for(tx, 1, 311)
        if tx.status != AUTHORIZED:
            return TransactionAnswer(response_code=3, reason_code=16, ref_trans_id=tx.trans_id)
        amount = self._amount(req.amount_text) if req.amount_text else tx.auth_amount
        if amount is None or amount <= 0:
            return TransactionAnswer(response_code=3, reason_code=5)
        if amount > tx.auth_amount:
            return TransactionAnswer(
                response_code=3,
                reason_code=47,
                ref_trans_id=tx.trans_id,
                account_number=tx.account_number,
                account_type=tx.account_type,
            )
        tx.status, tx.settle_amount = CAPTURED, amount
        self._save(tx)
        self._events.append(Event("payment.priorAuthCapture.created", tx, amount))
        return self._reply_for(tx, 1, 1)

    def _refund(self, req: TransactionRequest) -> TransactionAnswer:
        original = self.transactions.get(req.ref_trans_id)
        last_four = (req.card.number if req.card else "")[-4:]
        if (
            original is None
            or original.transaction_type == "refundTransaction"
            or original.status != SETTLED
            or (req.card is not None and last_four != original.last_four)
            or (req.customer_profile_id and req.customer_profile_id != original.customer_profile_id)
        ):
            return TransactionAnswer(response_code=3, reason_code=54, ref_trans_id=req.ref_trans_id)
        amount = self._amount(req.amount_text)
        if amount is None or amount <= 0:
            return TransactionAnswer(response_code=3, reason_code=5, ref_trans_id=original.trans_id)
        if original.refunded_amount + amount > original.settle_amount:
            return TransactionAnswer(response_code=3, reason_code=55, ref_trans_id=original.trans_id)
        card = StoredCard(original.last_four, original.account_type, "XXXX", original.zip)
        if self._duplicate_of(req, card, amount) is not None:
            return TransactionAnswer(response_code=3, reason_code=11, ref_trans_id=original.trans_id)
        answer = TransactionAnswer(
            response_code=1,
            reason_code=1,
            ref_trans_id=original.trans_id,
            account_number=card.masked,
            account_type=card.brand,
        )
        refund = self._record(
            req,
            card,
            answer,
            status=REFUND_PENDING,
            amount=amount,
            auth_amount=amount,
            settle_amount=amount,
            ref_trans_id=original.trans_id,
            invoice_number=req.invoice_number or original.invoice_number,
            customer_profile_id=original.customer_profile_id,
            payment_profile_id=original.payment_profile_id,
        )
        original.refunded_amount += amount
        self._touch("transaction", original.trans_id, original)
        self._events.append(Event("payment.refund.created", refund, amount))
        return answer

    def _void(self, req: TransactionRequest) -> TransactionAnswer:
        tx = self.transactions.get(req.ref_trans_id)
        if tx is None:
            return TransactionAnswer(response_code=3, reason_code=16)
        if tx.status == VOIDED:
            return self._reply_for(tx, 1, 310)
        if tx.status not in (AUTHORIZED, CAPTURED, HELD, REFUND_PENDING):
            # settled (or never approved): nothing left to void; a settled one needs a refund
            return TransactionAnswer(response_code=3, reason_code=16, ref_trans_id=tx.trans_id)
        tx.status = VOIDED
        self._save(tx)
        if tx.transaction_type == "refundTransaction":
            original = self.transactions.get(tx.ref_trans_id)
            if original is not None:
                original.refunded_amount -= tx.settle_amount
                self._touch("transaction", original.trans_id, original)
        self._events.append(Event("payment.void.created", tx, tx.settle_amount or tx.auth_amount))
        return self._reply_for(tx, 1, 1)

    def review(self, trans_id: str, action: str) -> Transaction | None:
        """Approve or decline a transaction held for review (what the Merchant Interface does)."""
        with self._lock:
            tx = self.transactions.get(trans_id)
            if tx is None or tx.status != HELD or action not in ("approve", "decline"):
                return None
            if action == "approve":
                capture = tx.transaction_type == "authCaptureTransaction"
                tx.status = CAPTURED if capture else AUTHORIZED
                tx.settle_amount = tx.auth_amount if capture else Decimal("0.00")
                self._events.append(Event("payment.fraud.approved", tx, tx.auth_amount))
            else:
                tx.status = DECLINED
                self._events.append(Event("payment.fraud.declined", tx, tx.auth_amount))
            self._save(tx)
            if self.settle_delay_seconds <= 0:
                self._settle(force=True)
            events = self._commit()
        self._publish(events)
        return tx

    # settlement ----------------------------------------------------------------------------------

    def _settle(self, *, force: bool) -> Batch | None:
        now = self.now()
        cutoff = now - timedelta(seconds=max(self.settle_delay_seconds, 0))
        due = [
            tx
            for tx in self.transactions.values()
            if not tx.batch_id
            and (tx.status in SETTLING or tx.status in BATCHED_AS_IS)
            and (force or tx.updated_at <= cutoff)
        ]
        if not due:
            return None
        batch = Batch(batch_id=self._new_id("_next_batch"), settled_at=now)
        self.batches[batch.batch_id] = batch
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
            return [
                tx
                for tx in self.transactions.values()
                if not tx.batch_id and (tx.status == HELD if pending_approval_only else True)
            ]

    def settled_batches(self, first: datetime, last: datetime) -> list[Batch]:
        with self._lock:
            return sorted(
                (b for b in self.batches.values() if first <= b.settled_at <= last), key=lambda b: b.settled_at
            )

    def batch_transactions(self, batch_id: str) -> list[Transaction] | None:
        with self._lock:
            if batch_id not in self.batches:
                return None
            return [tx for tx in self.transactions.values() if tx.batch_id == batch_id]

    def batch(self, batch_id: str) -> Batch | None:
        with self._lock:
            return self.batches.get(batch_id)

    def snapshot(self) -> list[dict]:
        with self._lock:
            return [tx.public() for tx in self.transactions.values()]

    # customer profiles (CIM) -----------------------------------------------------------------------

    def _validate_card(self, req: TransactionRequest, mode: str) -> tuple[StoredCard | None, str, ProfileAnswer | None]:
        """Check a card for storing: (card, direct response, refusal)."""
        probe = TransactionRequest("authOnlyTransaction", amount_text="0.00", **_payment_fields(req))
        card = self._payment_card(probe)
        if isinstance(card, TransactionAnswer):
            if card.error is not None:
                return None, "", ProfileAnswer(error=card.error)
            direct = _direct_response(card, probe)
            if mode == "none":
                return None, "", ProfileAnswer(error=("E00013", card.reason_text or "The field is invalid."))
            return (
                None,
                direct,
                ProfileAnswer(validation=[direct], error=("E00027", "The transaction was unsuccessful.")),
            )
        if mode != "liveMode":
            if mode == "testMode":
                ok = TransactionAnswer(
                    response_code=1, reason_code=1, account_number=card.masked, account_type=card.brand
                )
                return card, _direct_response(ok, probe), None
            return card, "", None
        answer = self._decide(card, probe.card.card_code if probe.card else "")
        direct = _direct_response(answer, probe)
        if answer.response_code not in (1, 4):
            return (
                None,
                direct,
                ProfileAnswer(validation=[direct], error=("E00027", "The transaction was unsuccessful.")),
            )
        return card, direct, None

    def create_customer_profile(
        self,
        *,
        merchant_customer_id: str,
        email: str,
        description: str,
        payment: TransactionRequest | None,
        customer_type: str = "individual",
        default: bool = False,
        validation_mode: str = "none",
    ) -> ProfileAnswer:
        with self._lock:
            if not (merchant_customer_id or email or description):
                return ProfileAnswer(error=("E00041", "One or more fields must contain a value."))
            for existing in self.customers.values():
                same_id = merchant_customer_id and existing.merchant_customer_id == merchant_customer_id
                same_contact = (
                    not merchant_customer_id
                    and not existing.merchant_customer_id
                    and (existing.email, existing.description) == (email, description)
                )
                if same_id or same_contact:
                    return ProfileAnswer(
                        error=("E00039", f"A duplicate record with ID {existing.customer_profile_id} already exists.")
                    )
            card, direct = None, ""
            if payment is not None:
                card, direct, refusal = self._validate_card(payment, validation_mode)
                if refusal is not None:
                    return refusal
            profile = CustomerProfile(self._new_id("_next_profile"), merchant_customer_id, email, description)
            self.customers[profile.customer_profile_id] = profile
            answer = ProfileAnswer(customer_profile_id=profile.customer_profile_id)
            if card is not None:
                stored = self._add_payment_profile(profile, card, customer_type, default)
                answer.payment_profile_ids.append(stored.payment_profile_id)
                if direct:
                    answer.validation.append(direct)
            self._touch("customer", profile.customer_profile_id, profile)
            self._commit()
        return answer

    def create_payment_profile(
        self,
        *,
        customer_profile_id: str,
        payment: TransactionRequest,
        customer_type: str = "individual",
        default: bool = False,
        validation_mode: str = "none",
    ) -> ProfileAnswer:
        with self._lock:
            profile = self.customers.get(customer_profile_id)
            if profile is None:
                return ProfileAnswer(error=("E00040", "The record cannot be found."))
            card, direct, refusal = self._validate_card(payment, validation_mode)
            if refusal is not None:
                refusal.customer_profile_id = customer_profile_id
                return refusal
            for payment_profile_id in profile.payment_profile_ids:
                stored = self.payment_profiles[payment_profile_id].card
                if (stored.last_four, stored.expiry, stored.brand) == (card.last_four, card.expiry, card.brand):
                    return ProfileAnswer(
                        customer_profile_id=customer_profile_id,
                        payment_profile_ids=[payment_profile_id],
                        error=("E00039", "A duplicate customer payment profile already exists."),
                    )
            stored = self._add_payment_profile(profile, card, customer_type, default)
            self._touch("customer", profile.customer_profile_id, profile)
            self._commit()
        return ProfileAnswer(
            customer_profile_id=customer_profile_id,
            payment_profile_ids=[stored.payment_profile_id],
            validation=[direct] if direct else [],
        )

    def _add_payment_profile(
        self, profile: CustomerProfile, card: StoredCard, customer_type: str, default: bool
    ) -> PaymentProfile:
        stored = PaymentProfile(
            self._new_id("_next_payment_profile"),
            profile.customer_profile_id,
            card,
            customer_type or "individual",
            default or not profile.payment_profile_ids,
        )
        self.payment_profiles[stored.payment_profile_id] = stored
        profile.payment_profile_ids.append(stored.payment_profile_id)
        self._touch("payment", stored.payment_profile_id, stored)
        return stored

    def customer_profile(
        self, *, customer_profile_id: str = "", merchant_customer_id: str = "", email: str = ""
    ) -> tuple[CustomerProfile, list[PaymentProfile]] | None:
        with self._lock:
            for profile in self.customers.values():
                if (
                    (customer_profile_id and profile.customer_profile_id == customer_profile_id)
                    or (merchant_customer_id and profile.merchant_customer_id == merchant_customer_id)
                    or (email and not customer_profile_id and not merchant_customer_id and profile.email == email)
                ):
                    return profile, [self.payment_profiles[i] for i in profile.payment_profile_ids]
            return None


def _payment_fields(req: TransactionRequest) -> dict:
    return {
        "card": req.card,
        "opaque_descriptor": req.opaque_descriptor,
        "opaque_value": req.opaque_value,
        "zip": req.zip,
        "customer_id": req.customer_id,
        "customer_email": req.customer_email,
    }


def _direct_response(answer: TransactionAnswer, req: TransactionRequest) -> str:
    """The AIM-style comma-delimited reply CIM returns for a validation authorization."""
    values = [
        str(answer.response_code),
        "1",
        str(answer.reason_code),
        answer.reason_text,
        answer.auth_code,
        answer.avs or "P",
        answer.trans_id,
        "none",
        "Test transaction for ValidateCustomerPaymentProfile.",
        "0.00",
        "CC",
        "auth_only",
        req.customer_id,
    ]
    values += [""] * 7 + [req.zip, "", "", "", req.customer_email]
    values += [""] * 13 + [answer.cvv, "", answer.account_number, answer.account_type]
    return ",".join(values)
