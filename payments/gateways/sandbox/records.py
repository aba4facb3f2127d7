"""The emulated account's records (transactions, batches, CIM profiles) and the requests and answers of its API."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal

from .cards import (
    REASONS,
    money,
)

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


def duplicate_key(
    transaction_type: str,
    amount: Decimal,
    account_number: str,
    invoice_number: str,
    customer_id: str,
    zip_code: str,
    ref_trans_id: str,
) -> tuple:
    """What makes two transactions duplicates of each other for Authorize.Net (within the window)."""
    return (transaction_type, amount, account_number, invoice_number, customer_id, zip_code, ref_trans_id)


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

    @property
    def duplicate_key(self) -> tuple:
        return duplicate_key(
            self.transaction_type,
            self.amount,
            self.account_number,
            self.invoice_number,
            self.customer_id,
            self.zip,
            self.ref_trans_id,
        )

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


# what the account keeps, by kind: the rows of the on-disk store
Record = Transaction | Batch | CustomerProfile | PaymentProfile
