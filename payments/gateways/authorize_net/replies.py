"""Reading Authorize.Net's replies into EasyPay's normalised results.


Replies are read with lxml (find() and .text), which is what the SDK's execute() hands out anyway
(an objectify tree of the same document). They are not also run through the SDK's pyxb binding
(``apicontractsv1.CreateFromDocument``): that costs about 6 ms of CPU per reply (a quarter of a
POST /payments) and its objects are not read, because they are not reliable: ANetApiResponse ends
in an xs:any, so pyxb files createCustomerProfileResponse's customerProfileId and
getSettledBatchListResponse's batchList under wildcardElements(); it has no room for some error
replies (getTransactionDetails' E00040 has no <transaction>) and gives up on others
(getCustomerProfileResponse with payment profiles exceeds its nondeterminism limit). A test
(test_gateway_authorize_net.py) keeps proving that the binding accepts the emulator's replies and
reads the same values. Only a document that is not XML in Authorize.Net's namespace is unusable.
lxml's .text also avoids objectify's quirk of turning an auth code "000123" into the number 123.

"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeAlias

from authorizenet import apicontractsv1 as api
from lxml import etree

from core.text import recordable

from ..base import (
    UNKNOWN_MALFORMED,
    GatewayResult,
    Outcome,
    TransactionDetails,
    TransactionKind,
    TransactionState,
)
from ..tokens import TestCard
from .codes import (
    BRANDS,
    CARD_PROBLEM_REASONS,
    CONFIGURATION_CODES,
    DECLINED_MESSAGE_CODES,
    REFUSAL_REASONS,
    SETTLED_STATUSES,
    TRANSACTION_KINDS,
    TRANSACTION_STATES,
)

logger = logging.getLogger(__package__)  # one logger for the whole adapter

_NS = api.Namespace.uri()
_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)
Node: TypeAlias = etree._Element  # lxml ships no types: Any to the checker


def parse(body: bytes) -> Node:
    root = etree.fromstring(body, _XML_PARSER)  # XMLSyntaxError: not XML at all
    if etree.QName(root).namespace != _NS:
        raise ValueError(f"unexpected root element {root.tag!r}")
    return root


def find(node: Node | None, path: str) -> Node | None:
    if node is None:
        return None
    return node.find("/".join(f"{{{_NS}}}{part}" for part in path.split("/")))


def findall(node: Node | None, path: str) -> list[Node]:
    if node is None:
        return []
    return node.findall("/".join(f"{{{_NS}}}{part}" for part in path.split("/")))


# No value in a reply is longer than a message text; a longer one is cut (recorded text, core.text).
REPLY_TEXT_MAX_CHARS = 1000


def text_at(node: Node | None, path: str = "") -> str | None:
    """An element's text, stripped, storable and at most ``REPLY_TEXT_MAX_CHARS`` long: a reply is
    recorded text, whatever the processor (or anything pretending to be it) sends."""
    found = find(node, path) if path else node
    if found is None or found.text is None:
        return None
    return recordable(found.text.strip(), REPLY_TEXT_MAX_CHARS) or None


def money_at(node: Node | None, path: str) -> Decimal | None:
    """Amounts come back with two decimals (the binding's round trip may drop one: 10.0); a value
    that is not a plain decimal amount counts as absent."""
    text = text_at(node, path)
    if text is None or not _REPLY_AMOUNT.fullmatch(text):
        return None
    return Decimal(text).quantize(Decimal("0.01"))


_REPLY_AMOUNT = re.compile(r"-?[0-9]{1,12}(?:\.[0-9]{1,4})?")


def utc_at(node: Node | None, path: str) -> datetime | None:
    text = text_at(node, path)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def brand_of(account_type: str | None) -> str | None:
    if account_type is None:
        return None
    return BRANDS.get(re.sub(r"[^a-z]", "", account_type.lower()), account_type.lower())


def last_four_of(masked: str | None) -> str | None:
    digits = re.sub(r"\D", "", masked or "")
    return digits[-4:] if len(digits) >= 4 else None


def first_message(root: Node) -> tuple[str, str | None, str]:
    """(resultCode, first message code, its text) of any reply."""
    message = find(root, "messages/message")
    return text_at(root, "messages/resultCode") or "", text_at(message, "code"), text_at(message, "text") or ""


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


def summary_details(summary: Node) -> TransactionDetails:
    return TransactionDetails(
        transaction_id=text_at(summary, "transId") or "",
        **_status_fields(text_at(summary, "transactionStatus") or "", None, None),
        settle_amount=money_at(summary, "settleAmount"),
        submitted_at=utc_at(summary, "submitTimeUTC"),
        invoice_number=text_at(summary, "invoiceNumber"),
        card_last_four=last_four_of(text_at(summary, "accountNumber")),
        card_brand=brand_of(text_at(summary, "accountType")),
    )


def full_details(tx: Node) -> TransactionDetails:
    card = find(tx, "payment/creditCard")
    return TransactionDetails(
        transaction_id=text_at(tx, "transId") or "",
        **_status_fields(
            text_at(tx, "transactionStatus") or "", text_at(tx, "transactionType"), text_at(tx, "responseCode")
        ),
        reason_code=text_at(tx, "responseReasonCode"),
        auth_amount=money_at(tx, "authAmount"),
        settle_amount=money_at(tx, "settleAmount"),
        submitted_at=utc_at(tx, "submitTimeUTC"),
        settled_at=utc_at(tx, "batch/settlementTimeUTC"),
        invoice_number=text_at(tx, "order/invoiceNumber"),
        card_last_four=last_four_of(text_at(card, "cardNumber")),
        card_brand=brand_of(text_at(card, "cardType")),
        ref_transaction_id=text_at(tx, "refTransId"),
        batch_id=text_at(tx, "batch/batchId"),
        auth_code=text_at(tx, "authCode"),
        reason_text=text_at(tx, "responseReasonDescription"),
    )


def transaction_result(response: Node, card: TestCard | None) -> GatewayResult:
    """A createTransaction reply as a :class:`GatewayResult` (``card``: the test card charged, if any)."""
    result_code, code, text = first_message(response)
    if code in CONFIGURATION_CODES:
        logger.error("Authorize.Net rejected the merchant credentials (%s): check AUTHORIZE_NET_*", code)
        return GatewayResult(outcome=Outcome.ERROR, message=text, error_code=code)
    tr = find(response, "transactionResponse")
    if tr is None:
        if result_code == "Ok":  # success without a transaction: not a reply we can trust
            return GatewayResult(outcome=Outcome.UNKNOWN, message=text, error_code=UNKNOWN_MALFORMED)
        outcome = Outcome.DECLINED if code in DECLINED_MESSAGE_CODES else Outcome.ERROR
        return GatewayResult(outcome=outcome, message=text, error_code=code)
    response_code = text_at(tr, "responseCode")
    reason_code, reason_text = text_at(tr, "messages/message/code"), text_at(tr, "messages/message/description")
    if reason_code is None:
        reason_code, reason_text = text_at(tr, "errors/error/errorCode"), text_at(tr, "errors/error/errorText")
    transaction_id = text_at(tr, "transId")
    auth_code = text_at(tr, "authCode")
    ref_transaction_id = text_at(tr, "refTransID")
    return GatewayResult(
        outcome=outcome_for(response_code, reason_code),
        transaction_id=None if transaction_id in (None, "0") else transaction_id,
        response_code=response_code,
        reason_code=reason_code,
        message=reason_text or text,
        error_code=code if result_code == "Error" else None,
        auth_code=None if auth_code in (None, "000000") else auth_code,
        avs_result=text_at(tr, "avsResultCode"),
        cvv_result=text_at(tr, "cvvResultCode"),
        card_last_four=last_four_of(text_at(tr, "accountNumber")) or (card.last_four if card else None),
        card_brand=brand_of(text_at(tr, "accountType")) or (card.brand if card else None),
        ref_transaction_id=None if ref_transaction_id in (None, "0") else ref_transaction_id,
        refusal=REFUSAL_REASONS.get(reason_code or "") if response_code != "1" else None,
    )


def profile_failure_outcome(response: Node, code: str | None) -> Outcome:
    """The outcome of a customer-profile request that stored nothing."""
    if code in CONFIGURATION_CODES:
        logger.error("Authorize.Net rejected the merchant credentials (%s): check AUTHORIZE_NET_*", code)
        return Outcome.ERROR
    if code in DECLINED_MESSAGE_CODES:
        return Outcome.DECLINED
    direct_text = text_at(response, "validationDirectResponseList/string") or text_at(
        response, "validationDirectResponse"
    )
    if direct_text:  # the $0 validation authorization's AIM-style reply: "2,1,2,This transaction ..."
        fields = direct_text.split(",")
        reason = fields[2] if len(fields) > 2 else None
        return outcome_for(fields[0], reason) if fields[0] != "1" else Outcome.ERROR
    return Outcome.ERROR
