"""Authorize.Net adapter on the official ``authorizenet`` SDK (1.1.6).

The requests on the payment path (charge, capture, refund, void, transaction details, a stored
card's profile) are written from templates (:mod:`.anet_xml`) that a Hypothesis test proves
byte-identical to what the SDK's ``apicontractsv1`` bindings write for the same values
(:mod:`.anet_sdk`, the reference), refusing what the bindings refuse; the SDK's object tree cost
about 0.75 ms of CPU per charge, the template 5 us. The other requests (customer profiles,
transaction lists, settled batches) are built with the bindings (so pyxb enforces the XSD's element
order and types). Replies are read with lxml (the binding's parse is slow and its objects are not
reliable, see below). What the SDK's controllers do around that is replaced, because
``APIOperationBase.execute()`` is unsafe for a payment server:

* the endpoint is a class-wide variable that every controller's ``__init__`` resets to the
  sandbox URL, so two threads race and one can post to the wrong host;
* ``requests.post`` runs without a timeout, so a stalled processor hangs a worker forever;
* on any HTTP exception it logs the whole request XML, card number and CVV included, at ERROR;
* failures come back as ``None`` (HTTP 4xx/5xx are falsy responses, connection errors are only
  logged), so a lost reply cannot be told apart from a decline;
* it passes ``http_proxy``/``https_proxy`` explicitly, which bypasses ``no_proxy``;
* it decodes the reply as ISO-8859-1 and blindly drops three characters (the BOM), garbling any
  non-ASCII text.

So this module writes the request as the bytes the SDK would send (its ``buildrequest``
produces ``ns1:``-prefixed XML and strips the prefixes; we ask pyxb for the default namespace
directly, which gives the same document without rewriting ``ns1:`` inside values), POSTs it with a
per-thread ``requests.Session`` (proxies from the environment honour ``no_proxy``, and
``REQUESTS_CA_BUNDLE`` works: see ``_transport_settings``) with ``timeout=(connect, read)`` on every
call and no redirects or retries, strips the UTF-8 BOM, and reads the reply with lxml (see "reading replies" below).
Transport failures are classified by whether the request can have reached the processor (see
``base.py``), and a :class:`CircuitBreaker` fails fast while the processor is down.

Card data: the adapter never logs request or reply bodies, and importing this module installs
EasyPay's :class:`core.logging.RedactingFilter` on the SDK's loggers, so anything else in the
process that uses the SDK's controllers cannot leak a PAN or CVV into the logs either.
"""

from __future__ import annotations

import codecs
import functools
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyxb
import pyxb.utils.domutils
import requests
from authorizenet import apicontractsv1 as api
from authorizenet.constants import constants as sdk_constants
from lxml import etree
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from core.logging import RedactingFilter
from core.text import recordable

from . import anet_sdk, anet_xml
from .anet_xml import CardData, Credentials, OpaqueData, ProfileRef
from .base import (
    ERROR_CONNECT,
    ERROR_HTTP_REJECTED,
    UNKNOWN_CONNECTION_LOST,
    UNKNOWN_HTTP_5XX,
    UNKNOWN_MALFORMED,
    UNKNOWN_READ_TIMEOUT,
    ChargeRequest,
    GatewayCommunicationError,
    GatewayConfigurationError,
    GatewayError,
    GatewayResult,
    GatewayUnavailable,
    InvalidPaymentSource,
    Outcome,
    ProfileResult,
    Refusal,
    SettledBatch,
    TransactionDetails,
    TransactionKind,
    TransactionState,
)
from .circuit import CircuitBreaker
from .tokens import TestCard, is_test_token, looks_like_test_token, resolve_test_token

logger = logging.getLogger(__name__)

ACCEPT_DESCRIPTOR = "COMMON.ACCEPT.INAPP.PAYMENT"
# responseCode 3 reasons that mean "this card cannot be used" rather than "the processor failed":
# invalid number/expiry, expired, card type not accepted, AVS and card code rejections.
CARD_PROBLEM_REASONS = frozenset({"6", "7", "8", "17", "27", "28", "37", "44", "45", "65", "78"})
CONFIGURATION_CODES = frozenset({"E00007", "E00008"})  # bad credentials, inactive account
DECLINED_MESSAGE_CODES = frozenset({"E00114", "E00115"})  # invalid / expired Accept.js nonce
NOT_FOUND = "E00040"
NO_RECORDS = "I00004"
# transactionStatus -> EasyPay's state of the transaction; any other status is OTHER.
TRANSACTION_STATES = {
    "authorizedPendingCapture": TransactionState.AUTHORIZED,
    "capturedPendingSettlement": TransactionState.CAPTURED,
    "settledSuccessfully": TransactionState.CAPTURED,
    "voided": TransactionState.VOIDED,
    "expired": TransactionState.EXPIRED,
    "declined": TransactionState.DECLINED,
    "FDSPendingReview": TransactionState.HELD,
    "FDSAuthorizedPendingReview": TransactionState.HELD,
    "underReview": TransactionState.HELD,
    "generalError": TransactionState.FAILED,
    "communicationError": TransactionState.FAILED,
    "failedReview": TransactionState.DECLINED,
    "refundPendingSettlement": TransactionState.REFUNDED,
    "refundSettledSuccessfully": TransactionState.REFUNDED,
}
SETTLED_STATUSES = frozenset({"settledSuccessfully", "refundSettledSuccessfully"})
TRANSACTION_KINDS = {
    "authCaptureTransaction": TransactionKind.CHARGE,
    "authOnlyTransaction": TransactionKind.CHARGE,
    "priorAuthCaptureTransaction": TransactionKind.CHARGE,
    "refundTransaction": TransactionKind.REFUND,
    "voidTransaction": TransactionKind.VOID,
}
# Reason codes of a refused transaction that the caller acts on: 54 "the referenced transaction
# does not meet the criteria for issuing a credit" (not settled yet), 16 "cannot be found".
REFUSAL_REASONS = {"54": Refusal.NOT_SETTLED, "16": Refusal.TRANSACTION_NOT_FOUND}
# Errors that mean "this nonce / card cannot be saved": the caller's input, not the processor's fault.
INVALID_SOURCE_CODES = frozenset({"E00003", "E00013", "E00014", "E00114", "E00115"})
_BRANDS = {
    "visa": "visa",
    "mastercard": "mastercard",
    "americanexpress": "amex",
    "amex": "amex",
    "discover": "discover",
    "jcb": "jcb",
    "dinersclub": "diners",
    "diners": "diners",
}
_PAGE_SIZE = 1000  # the API's maximum for transaction lists
_MAX_BATCH_WINDOW = timedelta(days=31)  # getSettledBatchList accepts at most 31 days per call
_DUPLICATE_ID = re.compile(r"\bID (\d+)\b")


def _install_log_redaction() -> None:
    for name in ("authorizenet", "authorizenet.sdk", "authorizenet.utility", __name__):
        target = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in target.filters):
            target.addFilter(RedactingFilter())


_install_log_redaction()


def resolve_endpoint(value: str) -> str:
    """``sandbox`` and ``production`` name the SDK's URLs; anything else is used as given."""
    word = value.strip().lower()
    if word == "sandbox":
        return sdk_constants.SANDBOX
    if word == "production":
        return sdk_constants.PRODUCTION
    return value.strip()


@dataclass(frozen=True)
class AuthorizeNetConfig:
    api_login_id: str
    transaction_key: str = field(repr=False)
    endpoint: str
    connect_timeout: float = 3.0
    read_timeout: float = 15.0
    duplicate_window: int = 0
    circuit_failure_threshold: int = 5
    circuit_reset_seconds: float = 60.0
    reconcile_lookback_days: float = 2.0

    @classmethod
    def from_settings(cls) -> AuthorizeNetConfig:
        from django.conf import settings

        return cls(
            api_login_id=getattr(settings, "AUTHORIZE_NET_API_LOGIN_ID", "easypay-sandbox"),
            transaction_key=getattr(settings, "AUTHORIZE_NET_TRANSACTION_KEY", "easypaysandbox16"),
            endpoint=resolve_endpoint(
                getattr(settings, "AUTHORIZE_NET_ENDPOINT", "http://127.0.0.1:8999/xml/v1/request.api")
            ),
            connect_timeout=float(getattr(settings, "AUTHORIZE_NET_CONNECT_TIMEOUT", 3.0)),
            read_timeout=float(getattr(settings, "AUTHORIZE_NET_READ_TIMEOUT", 15.0)),
            duplicate_window=int(getattr(settings, "AUTHORIZE_NET_DUPLICATE_WINDOW", 0)),
            circuit_failure_threshold=int(getattr(settings, "AUTHORIZE_NET_CIRCUIT_FAILURE_THRESHOLD", 5)),
            circuit_reset_seconds=float(getattr(settings, "AUTHORIZE_NET_CIRCUIT_RESET_SECONDS", 60.0)),
            reconcile_lookback_days=float(getattr(settings, "AUTHORIZE_NET_RECONCILE_LOOKBACK_DAYS", 2.0)),
        )


# --- transport -----------------------------------------------------------------------------------

_thread_local = threading.local()


def _session() -> requests.Session:
    """One Session (and connection pool) per thread: requests does not promise Session thread-safety.

    ``trust_env`` is off: with it on, requests scans the whole environment for proxies and looks for a
    ``.netrc`` on every call (0.5 ms of a 7 ms payment). What it would have found is worked out once
    per endpoint and environment by :func:`_transport_settings` and passed explicitly instead.
    """
    session = getattr(_thread_local, "session", None)
    if session is None:
        session = requests.Session()
        session.trust_env = False
        adapter = HTTPAdapter(max_retries=0, pool_connections=2, pool_maxsize=2)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        _thread_local.session = session
    return session


# The environment variables requests would consult for a call: proxies (``no_proxy`` honoured) and the
# CA bundle. Their values are the cache key, so a changed environment is seen on the next call.
_TRANSPORT_ENV = (
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)


@functools.lru_cache(maxsize=16)
def _transport_settings_for(endpoint: str, environment: tuple[str | None, ...]) -> tuple[dict[str, str], str | bool]:
    proxies = requests.utils.get_environ_proxies(endpoint)  # empty when no_proxy exempts the endpoint
    values = dict(zip(_TRANSPORT_ENV, environment, strict=True))
    verify = values["REQUESTS_CA_BUNDLE"] or values["CURL_CA_BUNDLE"] or True
    return proxies, verify


def _transport_settings(endpoint: str) -> tuple[dict[str, str], str | bool]:
    """(proxies, verify) exactly as ``trust_env`` would give them for ``endpoint``."""
    return _transport_settings_for(endpoint, tuple(os.environ.get(name) for name in _TRANSPORT_ENV))


class _NoReply(Exception):
    """No usable reply. ``sent`` says whether the request can have reached the processor."""

    def __init__(self, code: str, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.sent = sent


def _exception_chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        item = stack.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        stack.extend(item.args)
        stack.extend((getattr(item, "reason", None), item.__cause__, item.__context__))


def _nothing_sent(exc: requests.RequestException) -> bool:
    """True when the request provably never left: connection refused, DNS, TLS handshake, connect timeout."""
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError):
        return True
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return True
    return any(isinstance(e, NewConnectionError | ConnectTimeoutError) for e in _exception_chain(exc))


# Generating XML, pyxb re-validates every complex node against the XSD's content model (an
# automaton run per node) to put its children in order: about two thirds of the ~2 ms it took to
# serialise a charge. Without that pass the children come in the order of the binding's element
# declarations, which is the XSD's sequence order, so our requests are the same bytes:
# test_gateway_authorize_net.py checks it for every request the gateway tests send (pyxb's validated
# generation against ours). Values are still checked against their XSD types when assigned.
#
# pyxb reads that switch from one process-wide object (``pyxb.GlobalValidationConfig.forDocument``)
# on every node, so flipping it globally would also change other users of the SDK in the process
# (its controllers re-serialise replies whose xs:any content only the validating pass writes). The
# object's class is given a per-thread override instead: only a thread inside ``_serialize`` skips
# the pass; for everyone else ``forDocument`` is what it always was.
class _PerThreadGeneration(type(pyxb.GlobalValidationConfig)):
    skip_validation = threading.local()

    @property
    def forDocument(self) -> bool:  # pyxb's name
        if getattr(self.skip_validation, "active", False):
            return False
        return self._getForDocument()


if type(pyxb.GlobalValidationConfig) is pyxb.ValidationConfig:
    pyxb.GlobalValidationConfig.__class__ = _PerThreadGeneration


def _to_xml(request: Any, element_name: str) -> bytes:
    bds = pyxb.utils.domutils.BindingDOMSupport(default_namespace=api.Namespace)
    return request.toDOM(bds, element_name=element_name).toxml(encoding="utf-8")


def _serialize(request: Any, element_name: str) -> bytes:
    """The request document, generated without pyxb's content-model pass (see above)."""
    skip = _PerThreadGeneration.skip_validation
    skip.active = True
    try:
        return _to_xml(request, element_name)
    finally:
        skip.active = False


def serialize_validated(request: Any, element_name: str) -> bytes:
    """The document as pyxb's validating generation writes it (tests compare it with ``_serialize``)."""
    return _to_xml(request, element_name)


# --- reading replies -----------------------------------------------------------------------------
#
# Replies are read with lxml (find() and .text), which is what the SDK's execute() hands out anyway
# (an objectify tree of the same document). They are not also run through the SDK's pyxb binding
# (``apicontractsv1.CreateFromDocument``): that costs about 6 ms of CPU per reply (a quarter of a
# POST /payments) and its objects are not read, because they are not reliable: ANetApiResponse ends
# in an xs:any, so pyxb files createCustomerProfileResponse's customerProfileId and
# getSettledBatchListResponse's batchList under wildcardElements(); it has no room for some error
# replies (getTransactionDetails' E00040 has no <transaction>) and gives up on others
# (getCustomerProfileResponse with payment profiles exceeds its nondeterminism limit). A test
# (test_gateway_authorize_net.py) keeps proving that the binding accepts the emulator's replies and
# reads the same values. Only a document that is not XML in Authorize.Net's namespace is unusable.
# lxml's .text also avoids objectify's quirk of turning an auth code "000123" into the number 123.

_NS = api.Namespace.uri()
_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)
Node = etree._Element


def _read_capped(http: requests.Response) -> bytes | None:
    """The reply's body, or None when it is longer than ``REPLY_MAX_BYTES`` (not read further)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in http.iter_content(chunk_size=65536):
        size += len(chunk)
        if size > REPLY_MAX_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(body: bytes) -> Node:
    root = etree.fromstring(body, _XML_PARSER)  # XMLSyntaxError: not XML at all
    if etree.QName(root).namespace != _NS:
        raise ValueError(f"unexpected root element {root.tag!r}")
    return root


def _find(node: Node | None, path: str) -> Node | None:
    if node is None:
        return None
    return node.find("/".join(f"{{{_NS}}}{part}" for part in path.split("/")))


def _findall(node: Node | None, path: str) -> list[Node]:
    if node is None:
        return []
    return node.findall("/".join(f"{{{_NS}}}{part}" for part in path.split("/")))


# No value in a reply is longer than a message text; a longer one is cut (recorded text, core.text).
REPLY_TEXT_MAX_CHARS = 1000
# The largest reply read (a page of 1000 transactions is well under 1 MB); a longer one is not parsed.
REPLY_MAX_BYTES = 8 * 1024 * 1024


def _text(node: Node | None, path: str = "") -> str | None:
    """An element's text, stripped, storable and at most ``REPLY_TEXT_MAX_CHARS`` long: a reply is
    recorded text, whatever the processor (or anything pretending to be it) sends."""
    found = _find(node, path) if path else node
    if found is None or found.text is None:
        return None
    return recordable(found.text.strip(), REPLY_TEXT_MAX_CHARS) or None


def _money(node: Node | None, path: str) -> Decimal | None:
    """Amounts come back with two decimals (the binding's round trip may drop one: 10.0); a value
    that is not a plain decimal amount counts as absent."""
    text = _text(node, path)
    if text is None or not _REPLY_AMOUNT.fullmatch(text):
        return None
    return Decimal(text).quantize(Decimal("0.01"))


_REPLY_AMOUNT = re.compile(r"-?[0-9]{1,12}(?:\.[0-9]{1,4})?")


def _utc(node: Node | None, path: str) -> datetime | None:
    text = _text(node, path)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _brand(account_type: str | None) -> str | None:
    if account_type is None:
        return None
    return _BRANDS.get(re.sub(r"[^a-z]", "", account_type.lower()), account_type.lower())


def _last_four(masked: str | None) -> str | None:
    digits = re.sub(r"\D", "", masked or "")
    return digits[-4:] if len(digits) >= 4 else None


def _first_message(root: Node) -> tuple[str, str | None, str]:
    """(resultCode, first message code, its text) of any reply."""
    message = _find(root, "messages/message")
    return _text(root, "messages/resultCode") or "", _text(message, "code"), _text(message, "text") or ""


def outcome_for(response_code: str | None, reason_code: str | None) -> Outcome:
    if response_code == "1":
        return Outcome.APPROVED
    if response_code == "2":
        return Outcome.DECLINED
    if response_code == "4":
        return Outcome.HELD
    if response_code == "3":
        return Outcome.DECLINED if reason_code in CARD_PROBLEM_REASONS else Outcome.ERROR
    return Outcome.UNKNOWN


def _status_fields(status: str, transaction_type: str | None, response_code: str | None) -> dict[str, Any]:
    """The normalised fields of :class:`TransactionDetails` for the processor's own words."""
    return {
        "status": status,
        "state": TRANSACTION_STATES.get(status, TransactionState.OTHER),
        "kind": None if transaction_type is None else TRANSACTION_KINDS.get(transaction_type, TransactionKind.OTHER),
        "settled": status in SETTLED_STATUSES,
        "approved": response_code in (None, "1"),
        "transaction_type": transaction_type,
        "response_code": response_code,
    }


def _summary_details(summary: Node) -> TransactionDetails:
    return TransactionDetails(
        transaction_id=_text(summary, "transId") or "",
        **_status_fields(_text(summary, "transactionStatus") or "", None, None),
        settle_amount=_money(summary, "settleAmount"),
        submitted_at=_utc(summary, "submitTimeUTC"),
        invoice_number=_text(summary, "invoiceNumber"),
        card_last_four=_last_four(_text(summary, "accountNumber")),
        card_brand=_brand(_text(summary, "accountType")),
    )


def _full_details(tx: Node) -> TransactionDetails:
    card = _find(tx, "payment/creditCard")
    return TransactionDetails(
        transaction_id=_text(tx, "transId") or "",
        **_status_fields(_text(tx, "transactionStatus") or "", _text(tx, "transactionType"), _text(tx, "responseCode")),
        reason_code=_text(tx, "responseReasonCode"),
        auth_amount=_money(tx, "authAmount"),
        settle_amount=_money(tx, "settleAmount"),
        submitted_at=_utc(tx, "submitTimeUTC"),
        settled_at=_utc(tx, "batch/settlementTimeUTC"),
        invoice_number=_text(tx, "order/invoiceNumber"),
        card_last_four=_last_four(_text(card, "cardNumber")),
        card_brand=_brand(_text(card, "cardType")),
        ref_transaction_id=_text(tx, "refTransId"),
        batch_id=_text(tx, "batch/batchId"),
        auth_code=_text(tx, "authCode"),
        reason_text=_text(tx, "responseReasonDescription"),
    )


# --- the gateway ---------------------------------------------------------------------------------


class AuthorizeNetGateway:
    """:class:`payments.gateways.base.PaymentGateway` for Authorize.Net's XML API. Thread-safe."""

    def __init__(self, config: AuthorizeNetConfig, *, circuit: CircuitBreaker | None = None) -> None:
        self.config = config
        self.credentials = Credentials(config.api_login_id, config.transaction_key)
        self.circuit = circuit or CircuitBreaker(
            failure_threshold=config.circuit_failure_threshold, reset_timeout=config.circuit_reset_seconds
        )

    @classmethod
    def from_settings(cls) -> AuthorizeNetGateway:
        return cls(AuthorizeNetConfig.from_settings())

    def circuit_state(self) -> str:
        return self.circuit.state

    # money operations ----------------------------------------------------------------------------

    def charge(self, req: ChargeRequest) -> GatewayResult:
        source, card = self._charge_source(
            card_token=req.card_token,
            customer_profile_id=req.customer_profile_id,
            payment_profile_id=req.payment_profile_id,
            is_test=req.is_test,
        )
        document = anet_xml.charge(
            self.credentials,
            capture=req.capture,
            amount=req.amount,
            currency=req.currency,
            reference=req.reference,
            source=source,
            description=req.description[:255] or None,
            customer_id=req.customer_id[:20] or None,
            customer_email=req.customer_email or None,
            bill_to_zip=card.zip if card is not None and card.zip else None,
            duplicate_window=self.config.duplicate_window,
        )
        return self._transact(document, operation="charge", reference=req.reference, card=card)

    def capture(self, *, transaction_id: str, amount: Decimal) -> GatewayResult:
        document = anet_xml.capture(
            self.credentials,
            transaction_id=transaction_id,
            amount=amount,
            duplicate_window=self.config.duplicate_window,
        )
        return self._transact(document, operation="capture", reference=transaction_id)

    def refund(
        self, *, transaction_id: str, amount: Decimal, card_last_four: str, reference: str = ""
    ) -> GatewayResult:
        """Refund a settled transaction. ``reference`` (optional, <= 20 chars) is sent like a charge's."""
        if len(reference) > 20:
            raise ValueError("reference must be at most 20 characters (Authorize.Net's refId/invoiceNumber limit)")
        document = anet_xml.refund(
            self.credentials,
            transaction_id=transaction_id,
            amount=amount,
            card_number=card_last_four,
            reference=reference or None,
            duplicate_window=self.config.duplicate_window,
        )
        return self._transact(document, operation="refund", reference=reference or transaction_id)

    def void(self, *, transaction_id: str) -> GatewayResult:
        document = anet_xml.void(self.credentials, transaction_id=transaction_id)
        return self._transact(document, operation="void", reference=transaction_id)

    # reads -----------------------------------------------------------------------------------------

    def transaction_details(self, *, transaction_id: str) -> TransactionDetails | None:
        """The processor's current view of one transaction; None when it does not know the id (E00040)."""
        document = anet_xml.transaction_details(self.credentials, transaction_id=transaction_id)
        response = self._read(document, "getTransactionDetailsRequest")
        if response is None:
            return None
        return _full_details(_find(response, "transaction"))

    def find_transactions(self, *, reference: str, since: datetime | None = None) -> list[TransactionDetails]:
        """Every transaction whose ``order.invoiceNumber`` is ``reference``, with full details.

        Searches the unsettled list first and the settled batches since ``since`` (default: the
        configured look-back) second, so a transaction settling between the two calls is not
        missed. This is how reconciliation finds a charge whose reply was lost.
        """
        now = datetime.now(UTC)
        since = since or now - timedelta(days=self.config.reconcile_lookback_days)
        ids = [s.transaction_id for s in self._unsettled() if s.invoice_number == reference]
        for batch in self.settled_batches(first=since, last=now + timedelta(minutes=5)):
            ids.extend(
                s.transaction_id
                for s in self.batch_transactions(batch_id=batch.batch_id)
                if s.invoice_number == reference
            )
        found = [self.transaction_details(transaction_id=i) for i in dict.fromkeys(ids)]
        return sorted((d for d in found if d is not None), key=lambda d: (d.submitted_at or now, d.transaction_id))

    def settled_batches(self, *, first: datetime, last: datetime) -> list[SettledBatch]:
        batches: list[SettledBatch] = []
        start = first if first.tzinfo else first.replace(tzinfo=UTC)
        end = last if last.tzinfo else last.replace(tzinfo=UTC)
        while start < end:
            window_end = min(end, start + _MAX_BATCH_WINDOW)
            request = api.getSettledBatchListRequest(
                includeStatistics=False,
                firstSettlementDate=start.astimezone(UTC),
                lastSettlementDate=window_end.astimezone(UTC),
            )
            response = self._read(
                self._sdk_document(request, "getSettledBatchListRequest"), "getSettledBatchListRequest"
            )
            batches.extend(
                SettledBatch(
                    batch_id=_text(b, "batchId") or "",
                    settled_at=_utc(b, "settlementTimeUTC"),
                    state=_text(b, "settlementState") or "",
                )
                for b in _findall(response, "batchList/batch")
            )
            start = window_end
        return batches

    def batch_transactions(self, *, batch_id: str) -> list[TransactionDetails]:
        def page(number: int) -> bytes:
            request = api.getTransactionListRequest(
                batchId=batch_id,
                sorting=api.TransactionListSorting(orderBy="submitTimeUTC", orderDescending=False),
                paging=api.Paging(limit=_PAGE_SIZE, offset=number),
            )
            return self._sdk_document(request, "getTransactionListRequest")

        return [replace(d, batch_id=batch_id) for d in self._paged(page, "getTransactionListRequest")]

    def unsettled_transactions(self) -> list[TransactionDetails]:
        """Every transaction not yet in a settled batch (summaries: id, status, settle amount, invoice number)."""
        return self._unsettled()

    def _unsettled(self) -> list[TransactionDetails]:
        def page(number: int) -> bytes:
            request = api.getUnsettledTransactionListRequest(
                sorting=api.TransactionListSorting(orderBy="submitTimeUTC", orderDescending=False),
                paging=api.Paging(limit=_PAGE_SIZE, offset=number),
            )
            return self._sdk_document(request, "getUnsettledTransactionListRequest")

        return list(self._paged(page, "getUnsettledTransactionListRequest"))

    def _paged(self, build: Callable[[int], bytes], element_name: str) -> Iterator[TransactionDetails]:
        number = 1
        while True:
            response = self._read(build(number), element_name)
            rows = _findall(response, "transactions/transaction")
            yield from (_summary_details(r) for r in rows)
            if len(rows) < _PAGE_SIZE:
                return
            number += 1

    # customer profiles (CIM) -----------------------------------------------------------------------

    def customer_profile_create(self, *, customer_id: str, email: str, card_token: str, is_test: bool) -> ProfileResult:
        """Store the card in a CIM customer profile (validated: testMode in test, liveMode live).

        When the processor already has a profile for ``customer_id`` (E00039) the card is added to
        it as another payment profile; an identical card already there is returned as is.
        """
        payment, _, card = self._payment_source(
            card_token=card_token, customer_profile_id=None, payment_profile_id=None, is_test=is_test
        )
        payment_profile = api.customerPaymentProfileType(customerType="individual", payment=payment)
        payment_profile.defaultPaymentProfile = True
        if card is not None and card.zip:
            payment_profile.billTo = api.customerAddressType(zip=card.zip)
        profile = api.customerProfileType(
            merchantCustomerId=customer_id[:20] or None,
            email=email or None,
            description=None if (customer_id or email) else "EasyPay customer",
        )
        profile.paymentProfiles.append(payment_profile)
        validation = "testMode" if is_test else "liveMode"
        request = api.createCustomerProfileRequest(profile=profile, validationMode=validation)
        try:
            response = self._call(self._sdk_document(request, "createCustomerProfileRequest"))
        except _NoReply as exc:
            return ProfileResult(
                outcome=Outcome.UNKNOWN if exc.sent else Outcome.ERROR, message=exc.message, error_code=exc.code
            )
        result_code, code, text = _first_message(response)
        profile_id = _text(response, "customerProfileId")
        payment_profile_id = None
        if result_code == "Ok":
            payment_profile_id = _text(response, "customerPaymentProfileIdList/numericString")
        elif code == "E00039" and (match := _DUPLICATE_ID.search(text)):
            profile_id = match.group(1)
            added = api.createCustomerPaymentProfileRequest(
                customerProfileId=profile_id, paymentProfile=payment_profile, validationMode=validation
            )
            try:
                response = self._call(self._sdk_document(added, "createCustomerPaymentProfileRequest"))
            except _NoReply as exc:
                return ProfileResult(
                    outcome=Outcome.UNKNOWN if exc.sent else Outcome.ERROR,
                    customer_profile_id=profile_id,
                    message=exc.message,
                    error_code=exc.code,
                )
            result_code, code, text = _first_message(response)
            payment_profile_id = _text(response, "customerPaymentProfileId")
            if code == "E00039" and payment_profile_id:  # this very card is already stored
                result_code, code = "Ok", None
        if result_code != "Ok" or not (profile_id and payment_profile_id):
            outcome = self._profile_failure_outcome(response, code)
            logger.info("authorize.net profile create: outcome=%s error_code=%s", outcome, code)
            return ProfileResult(
                outcome=outcome,
                customer_profile_id=profile_id,
                message=text,
                error_code=code,
                refusal=Refusal.INVALID_PAYMENT_SOURCE if code in INVALID_SOURCE_CODES else None,
            )
        last_four, brand = (
            (card.last_four, card.brand) if card is not None else self._stored_card(profile_id, payment_profile_id)
        )
        logger.info(
            "authorize.net profile create: customer_profile_id=%s payment_profile_id=%s", profile_id, payment_profile_id
        )
        return ProfileResult(
            outcome=Outcome.APPROVED,
            customer_profile_id=profile_id,
            payment_profile_id=payment_profile_id,
            card_last_four=last_four,
            card_brand=brand,
            message=text,
        )

    def _profile_failure_outcome(self, response: Node, code: str | None) -> Outcome:
        if code in CONFIGURATION_CODES:
            logger.error("Authorize.Net rejected the merchant credentials (%s): check AUTHORIZE_NET_*", code)
            return Outcome.ERROR
        if code in DECLINED_MESSAGE_CODES:
            return Outcome.DECLINED
        direct_text = _text(response, "validationDirectResponseList/string") or _text(
            response, "validationDirectResponse"
        )
        if direct_text:  # the $0 validation authorization's AIM-style reply: "2,1,2,This transaction ..."
            fields = direct_text.split(",")
            reason = fields[2] if len(fields) > 2 else None
            return outcome_for(fields[0], reason) if fields[0] != "1" else Outcome.ERROR
        return Outcome.ERROR

    def _stored_card(self, profile_id: str, payment_profile_id: str) -> tuple[str | None, str | None]:
        """Last four and brand of a stored card (an Accept.js nonce does not tell us before storing)."""
        try:
            document = anet_xml.customer_profile(self.credentials, customer_profile_id=profile_id)
            response = self._read(document, "getCustomerProfileRequest")
        except GatewayError:
            return None, None
        for stored in _findall(response, "profile/paymentProfiles"):
            if _text(stored, "customerPaymentProfileId") == payment_profile_id:
                card = _find(stored, "payment/creditCard")
                return _last_four(_text(card, "cardNumber")), _brand(_text(card, "cardType"))
        return None, None

    # internals -------------------------------------------------------------------------------------

    def _payment_source(
        self,
        *,
        card_token: str | None,
        customer_profile_id: str | None,
        payment_profile_id: str | None,
        is_test: bool,
    ) -> tuple[Any, Any, TestCard | None]:
        """(payment, profile, test card) as the SDK's bindings: exactly one of the first two is set."""
        source, card = self._charge_source(
            card_token=card_token,
            customer_profile_id=customer_profile_id,
            payment_profile_id=payment_profile_id,
            is_test=is_test,
        )
        if isinstance(source, ProfileRef):
            return None, anet_sdk.profile_payment_type(source), None
        return anet_sdk.payment_type(source), None, card

    def _charge_source(
        self,
        *,
        card_token: str | None,
        customer_profile_id: str | None,
        payment_profile_id: str | None,
        is_test: bool,
    ) -> tuple[CardData | OpaqueData | ProfileRef, TestCard | None]:
        """(what pays, the test card behind it if any)."""
        if customer_profile_id:
            return ProfileRef(customer_profile_id, payment_profile_id or ""), None
        if not card_token:
            raise InvalidPaymentSource("no payment source given")
        if is_test:
            if not is_test_token(card_token):
                raise InvalidPaymentSource("test mode accepts only the test card tokens (tok_visa, tok_declined, ...)")
            card = resolve_test_token(card_token)
            return CardData(number=card.number, expiry=card.expiry, code=card.card_code), card
        if looks_like_test_token(card_token):
            raise InvalidPaymentSource("test card tokens are refused in live mode")
        return OpaqueData(descriptor=ACCEPT_DESCRIPTOR, value=card_token), None

    def _transact(
        self, document: bytes, *, operation: str, reference: str, card: TestCard | None = None
    ) -> GatewayResult:
        started = time.monotonic()
        try:
            response = self._call(document)
        except _NoReply as exc:
            result = GatewayResult(
                outcome=Outcome.UNKNOWN if exc.sent else Outcome.ERROR, message=exc.message, error_code=exc.code
            )
        else:
            result = self._transaction_result(response, card)
        log = logger.warning if result.outcome in (Outcome.ERROR, Outcome.UNKNOWN) else logger.info
        log(
            "authorize.net %s ref=%s: outcome=%s trans_id=%s response_code=%s reason_code=%s error_code=%s (%.0f ms)",
            operation,
            reference,
            result.outcome,
            result.transaction_id,
            result.response_code,
            result.reason_code,
            result.error_code,
            (time.monotonic() - started) * 1000,
        )
        return result

    def _transaction_result(self, response: Node, card: TestCard | None) -> GatewayResult:
        result_code, code, text = _first_message(response)
        if code in CONFIGURATION_CODES:
            logger.error("Authorize.Net rejected the merchant credentials (%s): check AUTHORIZE_NET_*", code)
            return GatewayResult(outcome=Outcome.ERROR, message=text, error_code=code)
        tr = _find(response, "transactionResponse")
        if tr is None:
            if result_code == "Ok":  # success without a transaction: not a reply we can trust
                return GatewayResult(outcome=Outcome.UNKNOWN, message=text, error_code=UNKNOWN_MALFORMED)
            outcome = Outcome.DECLINED if code in DECLINED_MESSAGE_CODES else Outcome.ERROR
            return GatewayResult(outcome=outcome, message=text, error_code=code)
        response_code = _text(tr, "responseCode")
        reason_code, reason_text = _text(tr, "messages/message/code"), _text(tr, "messages/message/description")
        if reason_code is None:
            reason_code, reason_text = _text(tr, "errors/error/errorCode"), _text(tr, "errors/error/errorText")
        transaction_id = _text(tr, "transId")
        auth_code = _text(tr, "authCode")
        ref_transaction_id = _text(tr, "refTransID")
        return GatewayResult(
            outcome=outcome_for(response_code, reason_code),
            transaction_id=None if transaction_id in (None, "0") else transaction_id,
            response_code=response_code,
            reason_code=reason_code,
            message=reason_text or text,
            error_code=code if result_code == "Error" else None,
            auth_code=None if auth_code in (None, "000000") else auth_code,
            avs_result=_text(tr, "avsResultCode"),
            cvv_result=_text(tr, "cvvResultCode"),
            card_last_four=_last_four(_text(tr, "accountNumber")) or (card.last_four if card else None),
            card_brand=_brand(_text(tr, "accountType")) or (card.brand if card else None),
            ref_transaction_id=None if ref_transaction_id in (None, "0") else ref_transaction_id,
            refusal=REFUSAL_REASONS.get(reason_code or "") if response_code != "1" else None,
        )

    def _read(self, document: bytes, element_name: str) -> Node | None:
        """A read call: the parsed reply, or None for 'not found' / 'no records'; raises otherwise."""
        try:
            response = self._call(document)
        except _NoReply as exc:
            if exc.sent:
                raise GatewayCommunicationError(exc.message) from exc
            if exc.code == ERROR_HTTP_REJECTED:
                raise GatewayConfigurationError(exc.message, error_code=exc.code) from exc
            raise GatewayUnavailable(exc.message) from exc
        result_code, code, text = _first_message(response)
        if code in CONFIGURATION_CODES:
            logger.error("Authorize.Net rejected the merchant credentials (%s): check AUTHORIZE_NET_*", code)
            raise GatewayConfigurationError(text or code, error_code=code)
        if code in (NOT_FOUND, NO_RECORDS):
            return None
        if result_code != "Ok":
            raise GatewayError(f"{element_name} failed: {code} {text}")
        return response

    def _sdk_document(self, request: Any, element_name: str) -> bytes:
        """A request built with the SDK's bindings (those not on the payment path), with our credentials."""
        request.merchantAuthentication = anet_sdk.merchant_authentication(
            self.config.api_login_id, self.config.transaction_key
        )
        request.clientId = sdk_constants.clientId
        return _serialize(request, element_name)

    def _call(self, document: bytes) -> Node:
        """POST one request document and parse the reply, or raise _NoReply. Feeds the circuit breaker."""
        self.circuit.before_call()
        try:
            response = self._post(document)
        except _NoReply as exc:
            if exc.code == ERROR_HTTP_REJECTED:
                self.circuit.record_success()  # the processor answered; our request or URL is wrong
            else:
                self.circuit.record_failure()
            raise
        except BaseException:
            self.circuit.record_failure()
            raise
        self.circuit.record_success()
        return response

    def _post(self, payload: bytes) -> Node:
        config = self.config
        try:
            proxies, verify = _transport_settings(config.endpoint)
            http = _session().post(
                config.endpoint,
                data=payload,
                headers=sdk_constants.headers,
                timeout=(config.connect_timeout, config.read_timeout),
                allow_redirects=False,
                proxies=proxies,
                verify=verify,
                stream=True,
            )
            try:
                body = _read_capped(http) if http.status_code < 300 else b""
            finally:
                http.close()
        except requests.exceptions.ReadTimeout:
            raise _NoReply(
                UNKNOWN_READ_TIMEOUT,
                f"No reply from Authorize.Net within {config.read_timeout:g}s; the request may have been processed",
                sent=True,
            )
        except requests.RequestException as exc:
            if _nothing_sent(exc):
                raise _NoReply(ERROR_CONNECT, f"Could not connect to Authorize.Net: {type(exc).__name__}", sent=False)
            raise _NoReply(
                UNKNOWN_CONNECTION_LOST,
                f"The connection to Authorize.Net broke before a reply: {type(exc).__name__}",
                sent=True,
            )
        if http.status_code >= 500:
            raise _NoReply(UNKNOWN_HTTP_5XX, f"Authorize.Net answered HTTP {http.status_code}", sent=True)
        if http.status_code >= 300:
            raise _NoReply(
                ERROR_HTTP_REJECTED, f"Authorize.Net refused the request: HTTP {http.status_code}", sent=False
            )
        if body is None:
            raise _NoReply(
                UNKNOWN_MALFORMED, f"Authorize.Net's reply is larger than {REPLY_MAX_BYTES} bytes", sent=True
            )
        if body.startswith(codecs.BOM_UTF8):
            body = body[len(codecs.BOM_UTF8) :]
        try:
            return _parse(body)
        except (etree.XMLSyntaxError, ValueError) as exc:
            raise _NoReply(
                UNKNOWN_MALFORMED, f"Authorize.Net's reply could not be parsed: {type(exc).__name__}", sent=True
            ) from None
