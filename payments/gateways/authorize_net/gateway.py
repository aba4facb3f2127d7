"""The Authorize.Net gateway: :class:`payments.gateways.base.PaymentGateway` on the XML API.

The requests on the payment path (charge, capture, refund, void, transaction details, a stored
card's profile) are written from templates (:mod:`.anet_xml`) that a Hypothesis test proves
byte-identical to what the SDK's ``apicontractsv1`` bindings write for the same values
(:mod:`.anet_sdk`, the reference); the SDK's object tree cost about 0.75 ms of CPU per charge, the
template 5 us. The other requests (customer profiles, transaction lists, settled batches) are built
with the bindings (:mod:`.sdk_quirks`). They are POSTed by :mod:`.transport`, the replies read by
:mod:`.replies`, and a :class:`~payments.gateways.circuit.CircuitBreaker` fails fast while the
processor is down.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from authorizenet import apicontractsv1 as api

from ..base import (
    ERROR_HTTP_REJECTED,
    ChargeRequest,
    GatewayCommunicationError,
    GatewayConfigurationError,
    GatewayError,
    GatewayResult,
    GatewayUnavailable,
    InvalidPaymentSource,
    Outcome,
    SettledBatch,
    TransactionDetails,
)
from ..circuit import CircuitBreaker, SharedStorage, redis_client
from ..tokens import TestCard, is_test_token, looks_like_test_token, resolve_test_token
from . import anet_sdk, anet_xml
from .anet_xml import CardData, Credentials, OpaqueData, ProfileRef
from .codes import (
    ACCEPT_DESCRIPTOR,
    CONFIGURATION_CODES,
    NO_RECORDS,
    NOT_FOUND,
)
from .config import AuthorizeNetConfig
from .profiles import CustomerProfiles
from .replies import (
    Node,
    find,
    findall,
    first_message,
    full_details,
    summary_details,
    text_at,
    transaction_result,
    utc_at,
)
from .sdk_quirks import sdk_document
from .transport import NoReply, post

logger = logging.getLogger(__package__)  # one logger for the whole adapter

_PAGE_SIZE = 1000  # the API's maximum for transaction lists
_MAX_BATCH_WINDOW = timedelta(days=31)  # getSettledBatchList accepts at most 31 days per call
_DUPLICATE_ID = re.compile(r"\bID (\d+)\b")


def circuit_for(config: AuthorizeNetConfig) -> CircuitBreaker:
    """The breaker for ``config``'s account: shared through Redis when one is configured."""
    storage = None
    if config.circuit_redis_url:
        client = redis_client(
            config.circuit_redis_url,
            sentinels=config.circuit_redis_sentinels,
            master=config.circuit_redis_master,
            db=config.circuit_redis_db,
        )
        storage = SharedStorage(client, namespace=f"easypay:circuit:authorize_net:{config.circuit_scope()}")
    return CircuitBreaker(
        failure_threshold=config.circuit_failure_threshold,
        reset_timeout=config.circuit_reset_seconds,
        storage=storage,
        # a trial call takes at most connect + read timeout; a claim older than that was lost with its process
        trial_timeout=config.connect_timeout + config.read_timeout + 5,
    )


class AuthorizeNetGateway(CustomerProfiles):
    """:class:`payments.gateways.base.PaymentGateway` for Authorize.Net's XML API. Thread-safe."""

    def __init__(self, config: AuthorizeNetConfig, *, circuit: CircuitBreaker | None = None) -> None:
        self.config = config
        self.credentials = Credentials(config.api_login_id, config.transaction_key)
        self.circuit = circuit or circuit_for(config)

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
        return full_details(find(response, "transaction"))

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
                    batch_id=text_at(b, "batchId") or "",
                    settled_at=utc_at(b, "settlementTimeUTC"),
                    state=text_at(b, "settlementState") or "",
                )
                for b in findall(response, "batchList/batch")
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
            rows = findall(response, "transactions/transaction")
            yield from (summary_details(r) for r in rows)
            if len(rows) < _PAGE_SIZE:
                return
            number += 1

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
        except NoReply as exc:
            result = GatewayResult(
                outcome=Outcome.UNKNOWN if exc.sent else Outcome.ERROR, message=exc.message, error_code=exc.code
            )
        else:
            result = transaction_result(response, card)
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

    def _read(self, document: bytes, element_name: str) -> Node | None:
        """A read call: the parsed reply, or None for 'not found' / 'no records'; raises otherwise."""
        try:
            response = self._call(document)
        except NoReply as exc:
            if exc.sent:
                raise GatewayCommunicationError(exc.message) from exc
            if exc.code == ERROR_HTTP_REJECTED:
                raise GatewayConfigurationError(exc.message, error_code=exc.code) from exc
            raise GatewayUnavailable(exc.message) from exc
        result_code, code, text = first_message(response)
        if code in CONFIGURATION_CODES:
            logger.error("Authorize.Net rejected the merchant credentials (%s): check AUTHORIZE_NET_*", code)
            raise GatewayConfigurationError(text or code, error_code=code)
        if code in (NOT_FOUND, NO_RECORDS):
            return None
        if result_code != "Ok":
            raise GatewayError(f"{element_name} failed: {code} {text}")
        return response

    def _sdk_document(self, request: Any, element_name: str) -> bytes:
        return sdk_document(request, self.credentials, element_name)

    def _call(self, document: bytes) -> Node:
        """POST one request document and parse the reply, or raise NoReply. Feeds the circuit breaker."""
        self.circuit.before_call()
        try:
            response = post(self.config, document)
        except NoReply as exc:
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
