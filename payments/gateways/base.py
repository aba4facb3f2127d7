"""The processor boundary: what EasyPay asks of a card processor, and what it gets back.

Services code against :class:`PaymentGateway` and these frozen dataclasses only; nothing outside
``payments/gateways/`` imports the Authorize.Net SDK.

How failures come back (the contract every implementation keeps):

* ``charge``, ``capture``, ``refund`` and ``void`` return a :class:`GatewayResult` for every
  answer and for every transport failure, so the caller has one place to decide:

  - ``APPROVED`` / ``DECLINED`` / ``HELD``: the processor's definite answer.
  - ``ERROR``: a definite failure, nothing was charged or changed. That covers the processor's own
    errors (responseCode 3, an ``E000xx`` message), a request the connection never carried
    (connection refused, connect timeout) and rejected merchant credentials (``error_code``
    ``"E00007"``; the adapter logs it at ERROR because only an operator can fix it).
  - ``UNKNOWN``: the request may have reached the processor but no usable answer came back (read
    timeout, HTTP 5xx, a dropped connection, a garbled reply). Never retry blindly: reconcile with
    :meth:`PaymentGateway.find_transactions` (charges carry ``reference`` as ``invoiceNumber``).

  The one exception they raise is :class:`GatewayUnavailable` when the circuit breaker is open:
  the call was refused locally and definitely charged nothing.
* The read operations (``transaction_details``, ``find_transactions``, ``settled_batches``,
  ``batch_transactions``) raise instead: :class:`GatewayUnavailable` (nothing sent, or circuit
  open), :class:`GatewayCommunicationError` (no usable reply) and
  :class:`GatewayConfigurationError` (credentials rejected).
* A payment source that cannot be sent at all (a test token in live mode, an unknown test token)
  raises :class:`InvalidPaymentSource`, a ``ValueError``: it is the caller's input, not the
  processor's fault, and no request is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol, runtime_checkable

# ``error_code`` values for failures that happen before or instead of a processor answer.
ERROR_CONNECT = "connect_failed"  # nothing was sent (refused, DNS, TLS handshake, connect timeout)
ERROR_HTTP_REJECTED = "http_rejected"  # an HTTP 4xx: the request was refused before processing
UNKNOWN_READ_TIMEOUT = "read_timeout"
UNKNOWN_HTTP_5XX = "http_5xx"
UNKNOWN_CONNECTION_LOST = "connection_lost"
UNKNOWN_MALFORMED = "malformed_response"
CREDENTIALS_REJECTED = "E00007"


class Outcome(StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"
    HELD = "held"  # accepted but held for review by the processor's fraud filters (responseCode 4)
    ERROR = "error"  # definite failure, nothing charged
    UNKNOWN = "unknown"  # the request may have reached the processor; outcome not known


class TransactionState(StrEnum):
    """Where a processor transaction stands, in EasyPay's words; the adapter maps the processor's own."""

    AUTHORIZED = "authorized"  # approved, waiting for a capture
    CAPTURED = "captured"  # captured: waiting for settlement or settled
    VOIDED = "voided"  # voided before settlement
    EXPIRED = "expired"  # an authorization never captured in time: released like a void
    DECLINED = "declined"
    HELD = "held"  # held for review by the processor's fraud filters
    FAILED = "failed"  # the processor's own error; nothing charged
    REFUNDED = "refunded"  # a refund that moved money back to the card (settled or not)
    OTHER = "other"  # a state EasyPay does not act on (settlement error, chargeback, ...)


class TransactionKind(StrEnum):
    CHARGE = "charge"  # an authorization, a sale or the capture of an authorization
    REFUND = "refund"
    VOID = "void"
    OTHER = "other"


class Refusal(StrEnum):
    """Why the processor refused a request, where the caller acts on the reason."""

    NOT_SETTLED = "not_settled"  # a refund of a charge that has not settled yet (void it instead)
    TRANSACTION_NOT_FOUND = "transaction_not_found"  # the referenced transaction is unknown to the processor
    INVALID_PAYMENT_SOURCE = "invalid_payment_source"  # the card token or nonce cannot be used or saved


class GatewayError(Exception):
    """Base class of the processor boundary's errors."""


class GatewayUnavailable(GatewayError):
    """The processor was not asked: circuit open, or the connection failed before sending."""


class GatewayCommunicationError(GatewayError):
    """A read request was sent but no usable reply came back (timeout, HTTP 5xx, garbled XML)."""


class GatewayConfigurationError(GatewayError):
    """The processor rejected our configuration (E00007 bad credentials, E00008 inactive account)."""

    def __init__(self, message: str, *, error_code: str | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code


class InvalidPaymentSource(ValueError):
    """The payment source cannot be used in this mode (test token in live mode, unknown token)."""


@dataclass(frozen=True)
class ChargeRequest:
    amount: Decimal  # quantized to the currency's exponent
    currency: str
    capture: bool  # True: authCaptureTransaction (purchase); False: authOnlyTransaction
    reference: str  # <= 20 chars, sent as refId and order.invoiceNumber so a lost reply can be found
    card_token: str | None = None  # a test token (tok_visa...) or, in live mode, an Accept.js nonce
    customer_profile_id: str | None = None  # or a stored CIM customer profile ...
    payment_profile_id: str | None = None  # ... and one of its payment profiles
    is_test: bool = True
    description: str = ""
    customer_id: str = ""
    customer_email: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal) or not self.amount.is_finite() or self.amount <= 0:
            raise ValueError("amount must be a positive, finite Decimal")
        if not 1 <= len(self.reference) <= 20:
            raise ValueError("reference must be 1 to 20 characters (Authorize.Net's refId/invoiceNumber limit)")
        has_profile = bool(self.customer_profile_id or self.payment_profile_id)
        if bool(self.card_token) == has_profile:
            raise InvalidPaymentSource("give exactly one payment source: card_token, or a customer payment profile")
        if has_profile and not (self.customer_profile_id and self.payment_profile_id):
            raise InvalidPaymentSource("a stored card needs both customer_profile_id and payment_profile_id")


@dataclass(frozen=True)
class GatewayResult:
    outcome: Outcome
    transaction_id: str | None = None
    response_code: str | None = None  # "1".."4"
    reason_code: str | None = None
    message: str = ""
    error_code: str | None = None  # E00027, E00007, ... or one of the local codes above
    auth_code: str | None = None
    avs_result: str | None = None
    cvv_result: str | None = None
    card_last_four: str | None = None
    card_brand: str | None = None  # visa, mastercard, amex, discover, jcb, diners
    ref_transaction_id: str | None = None
    refusal: Refusal | None = None  # set when the processor's refusal has a reason the caller acts on

    @property
    def approved(self) -> bool:
        return self.outcome is Outcome.APPROVED


@dataclass(frozen=True)
class TransactionDetails:
    transaction_id: str
    # The processor's own status text, for logs and reports only: decide on ``state``, ``kind``,
    # ``settled`` and ``approved``, which the adapter derives from it.
    status: str
    state: TransactionState = TransactionState.OTHER
    kind: TransactionKind | None = None  # None when the reply does not say (list summaries)
    settled: bool = False  # in a batch that settled successfully
    approved: bool = True  # False when the processor's response code is not an approval
    response_code: str | None = None
    reason_code: str | None = None
    auth_amount: Decimal | None = None
    settle_amount: Decimal | None = None
    submitted_at: datetime | None = None
    settled_at: datetime | None = None  # the batch's settlementTimeUTC
    invoice_number: str | None = None
    card_last_four: str | None = None
    card_brand: str | None = None
    ref_transaction_id: str | None = None
    transaction_type: str | None = None  # the processor's own name of the kind, for logs and reports
    batch_id: str | None = None
    auth_code: str | None = None
    reason_text: str | None = None


@dataclass(frozen=True)
class TransactionNotice:
    """What a processor's notification (inbound webhook) says about which transaction it concerns."""

    about_transaction: bool  # False: the notification is about something else (a customer profile ...)
    subject: object  # what it is about, in the processor's words, for logs
    transaction_id: str = ""  # "" when it names none
    references: tuple[str, ...] = ()  # our references it carries (invoice number, merchant reference)


@dataclass(frozen=True)
class SettledBatch:
    batch_id: str
    settled_at: datetime | None
    state: str  # settlementState: settledSuccessfully, settlementError, pendingSettlement


@dataclass(frozen=True)
class ProfileResult:
    outcome: Outcome
    customer_profile_id: str | None = None
    payment_profile_id: str | None = None
    card_last_four: str | None = None
    card_brand: str | None = None
    message: str = ""
    error_code: str | None = None
    refusal: Refusal | None = None


@runtime_checkable
class PaymentGateway(Protocol):
    def charge(self, req: ChargeRequest) -> GatewayResult: ...

    def capture(self, *, transaction_id: str, amount: Decimal) -> GatewayResult: ...

    def refund(
        self, *, transaction_id: str, amount: Decimal, card_last_four: str, reference: str = ""
    ) -> GatewayResult: ...

    def void(self, *, transaction_id: str) -> GatewayResult: ...

    def transaction_details(self, *, transaction_id: str) -> TransactionDetails | None: ...

    def find_transactions(self, *, reference: str, since: datetime | None = None) -> list[TransactionDetails]: ...

    def settled_batches(self, *, first: datetime, last: datetime) -> list[SettledBatch]: ...

    def batch_transactions(self, *, batch_id: str) -> list[TransactionDetails]: ...

    def unsettled_transactions(self) -> list[TransactionDetails]: ...

    def customer_profile_create(
        self, *, customer_id: str, email: str, card_token: str, is_test: bool
    ) -> ProfileResult: ...

    def circuit_state(self) -> str: ...
