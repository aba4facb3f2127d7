"""Authorize.Net's XML API on top of :class:`SandboxState`: parse a request, answer like the gateway.

Requests are read with lxml (no pyxb: this is the hot path), replies are written in the XSD's
element order (the SDK's pyxb bindings reject anything else) in the default namespace, UTF-8 with
a BOM, exactly as the SDK expects. Errors are HTTP 200 with ``resultCode`` Error, like the real
gateway; a failed authentication is a root ``<ErrorResponse>``.
"""

from __future__ import annotations

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


def _create_transaction(state: SandboxState, root: etree._Element) -> etree._Element:
    req = _transaction_request(root)
    answer = state.create_transaction(req)
    reply = _root("createTransactionResponse", req.ref_id)
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


HANDLERS: dict[str, Callable[[SandboxState, etree._Element], etree._Element]] = {
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
        return ApiReply(serialize(handler(state, root)), method)
    except ApiError as exc:
        return ApiReply(error_response(exc.code, exc.text), method)
