"""Authorize.Net's XML API on top of :class:`SandboxState`: parse a request, answer like the gateway.

Requests are read with lxml (no pyxb: this is the hot path), replies are written in the XSD's
element order (the SDK's pyxb bindings reject anything else) in the default namespace, UTF-8 with
a BOM, exactly as the SDK expects. Errors are HTTP 200 with ``resultCode`` Error, like the real
gateway; a failed authentication is a root ``<ErrorResponse>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree

from .state import (
    SandboxState,
    TransactionAnswer,
)
from .xml_profiles import (
    _create_customer_profile,
    _create_payment_profile,
    _get_customer_profile,
)
from .xml_reporting import (
    _settled_batch_list,
    _transaction_details,
    _transaction_list,
    _unsettled_list,
)
from .xmldoc import (
    _PARSER_OPTIONS,
    BAD_CREDENTIALS,
    NS,
    SUCCESS,
    UNSUCCESSFUL,
    XML_HEADER,
    ApiError,
    _local,
    _messages,
    _node,
    _root,
    _sub,
    _text,
    _transaction_request,
    error_response,
    serialize,
)

__all__ = ["NS", "ApiReply", "handle"]

# --- handlers ------------------------------------------------------------------------------------


def _create_transaction(state: SandboxState, root: etree._Element) -> etree._Element | bytes:
    req = _transaction_request(root)
    answer = state.create_transaction(req)
    return _transaction_reply_text(req.ref_id, answer) or _transaction_reply(req.ref_id, answer)


def _transaction_reply(ref_id: str, answer: TransactionAnswer) -> etree._Element:
    """createTransactionResponse as an element tree (what ``_transaction_reply_text`` writes faster)."""
    reply = _root("createTransactionResponse", ref_id)
    if answer.error is not None:
        _messages(reply, "Error", *answer.error)
        return reply
    ok = answer.response_code in (1, 4)
    _messages(reply, *(("Ok", *SUCCESS) if ok else ("Error", *UNSUCCESSFUL)))
    tr = _node(reply, "transactionResponse")
    _sub(tr, "responseCode", answer.response_code)
    _sub(tr, "authCode", answer.auth_code, keep_empty=True)
    _sub(tr, "avsResultCode", answer.avs or "P")
    _sub(tr, "cvvResultCode", answer.cvv, keep_empty=True)
    _sub(tr, "cavvResultCode", "", keep_empty=True)
    _sub(tr, "transId", answer.trans_id)
    _sub(tr, "refTransID", answer.ref_trans_id, keep_empty=True)
    _sub(tr, "transHash", "", keep_empty=True)
    _sub(tr, "testRequest", "0")
    _sub(tr, "accountNumber", answer.account_number, keep_empty=True)
    _sub(tr, "accountType", answer.account_type, keep_empty=True)
    _reason(tr, answer, ok)
    _sub(tr, "transHashSha2", "", keep_empty=True)
    _sub(tr, "networkTransId", answer.network_trans_id)
    return reply


def _reason(parent: etree._Element, answer: TransactionAnswer, ok: bool) -> None:
    if ok:
        message = _node(_node(parent, "messages"), "message")
        _sub(message, "code", answer.reason_code)
        _sub(message, "description", answer.reason_text)
    else:
        error = _node(_node(parent, "errors"), "error")
        _sub(error, "errorCode", answer.reason_code)
        _sub(error, "errorText", answer.reason_text)


# --- createTransactionResponse written as text ------------------------------------------------------
#
# Every charge, capture, refund and void is answered with this reply, and building its 25 elements with
# lxml was a third of the emulator's time per charge. It is written here as text, byte for byte what
# ``serialize(_transaction_reply(...))`` gives (tests compare the two), whenever every value is
# printable ASCII: lxml escapes only &, < and > among those. Anything else takes the element tree.

_REPLY_OPEN = etree.tostring(_root("createTransactionResponse")).decode()[: -len("/>")] + ">"
_PRINTABLE_ASCII = re.compile(r"[ -~]*")
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def _element(tag: str, text: object, *, keep_empty: bool = False) -> str:
    """What ``_sub`` adds, as text; the caller has checked the text is printable ASCII."""
    if text is None or (text == "" and not keep_empty):
        return ""
    return f"<{tag}>{str(text).translate(_ESCAPES)}</{tag}>"


def _transaction_reply_text(ref_id: str, answer: TransactionAnswer) -> bytes | None:
    error = answer.error
    values = (
        ref_id,
        answer.auth_code,
        answer.avs,
        answer.cvv,
        answer.trans_id,
        answer.ref_trans_id,
        answer.account_number,
        answer.account_type,
        answer.reason_text,
        answer.network_trans_id,
        *(error or ()),
    )
    if not all(isinstance(v, str) and _PRINTABLE_ASCII.fullmatch(v) for v in values):
        return None
    ok = answer.response_code in (1, 4)
    if error is not None:
        result, code, text = "Error", *error
    else:
        result, code, text = ("Ok", *SUCCESS) if ok else ("Error", *UNSUCCESSFUL)
    parts = [
        _REPLY_OPEN,
        _element("refId", ref_id),
        f"<messages><resultCode>{result}</resultCode><message>",
        _element("code", code),
        _element("text", text),
        "</message></messages>",
    ]
    if error is None:
        reason = ("messages", "message", "code", "description") if ok else ("errors", "error", "errorCode", "errorText")
        parts += [
            "<transactionResponse>",
            _element("responseCode", answer.response_code),
            _element("authCode", answer.auth_code, keep_empty=True),
            _element("avsResultCode", answer.avs or "P"),
            _element("cvvResultCode", answer.cvv, keep_empty=True),
            "<cavvResultCode></cavvResultCode>",
            _element("transId", answer.trans_id),
            _element("refTransID", answer.ref_trans_id, keep_empty=True),
            "<transHash></transHash><testRequest>0</testRequest>",
            _element("accountNumber", answer.account_number, keep_empty=True),
            _element("accountType", answer.account_type, keep_empty=True),
            f"<{reason[0]}><{reason[1]}>",
            _element(reason[2], answer.reason_code),
            _element(reason[3], answer.reason_text),
            f"</{reason[1]}></{reason[0]}>",
            "<transHashSha2></transHashSha2>",
            _element("networkTransId", answer.network_trans_id),
            "</transactionResponse>",
        ]
    parts.append("</createTransactionResponse>")
    return XML_HEADER + "".join(parts).encode("ascii")


HANDLERS: dict[str, Callable[[SandboxState, etree._Element], etree._Element | bytes]] = {
    "createTransactionRequest": _create_transaction,
    "getTransactionDetailsRequest": _transaction_details,
    "getUnsettledTransactionListRequest": _unsettled_list,
    "getTransactionListRequest": _transaction_list,
    "getSettledBatchListRequest": _settled_batch_list,
    "createCustomerProfileRequest": _create_customer_profile,
    "createCustomerPaymentProfileRequest": _create_payment_profile,
    "getCustomerProfileRequest": _get_customer_profile,
}


@dataclass
class ApiReply:
    body: bytes
    method: str  # the API method's root element name, "" when the request was unreadable


def handle(state: SandboxState, body: bytes, content_type: str) -> ApiReply:
    """Answer one POST to /xml/v1/request.api (always HTTP 200, like the gateway)."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in ("application/xml", "text/xml"):
        return ApiReply(error_response("E00002", "The content-type specified is not supported."), "")
    try:
        root = etree.fromstring(body, etree.XMLParser(**_PARSER_OPTIONS))
    except etree.XMLSyntaxError:
        return ApiReply(error_response("E00003", "An error occurred while parsing the XML request."), "")
    method = _local(root)
    if etree.QName(root).namespace != NS:
        return ApiReply(error_response("E00045", "The root node does not reference a valid XML namespace."), method)
    handler = HANDLERS.get(method)
    if handler is None:
        return ApiReply(error_response("E00004", "The name of the requested API method is invalid."), method)
    if not state.authenticate(
        _text(root, "merchantAuthentication/name"), _text(root, "merchantAuthentication/transactionKey")
    ):
        return ApiReply(error_response(*BAD_CREDENTIALS), method)
    try:
        reply = handler(state, root)
        return ApiReply(reply if isinstance(reply, bytes) else serialize(reply), method)
    except ApiError as exc:
        return ApiReply(error_response(exc.code, exc.text), method)
