"""Authorize.Net's XML API on top of :class:`SandboxState`: parse a request, answer like the gateway.

Requests are read with lxml (no pyxb: this is the hot path), replies are written in the XSD's
element order (the SDK's pyxb bindings reject anything else) in the default namespace, UTF-8 with
a BOM, exactly as the SDK expects. Errors are HTTP 200 with ``resultCode`` Error, like the real
gateway; a failed authentication is a root ``<ErrorResponse>``.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lxml import etree

from .state import (
    CardInput,
    SandboxState,
    Transaction,
    TransactionAnswer,
    TransactionRequest,
    money,
)

NS = "AnetApi/xml/v1/schema/AnetApiSchema.xsd"
_NSMAP = {None: NS, "xsi": "http://www.w3.org/2001/XMLSchema-instance", "xsd": "http://www.w3.org/2001/XMLSchema"}
_Q = {"a": NS}
XML_HEADER = codecs.BOM_UTF8 + b'<?xml version="1.0" encoding="utf-8"?>'
_PARSER_OPTIONS = {"resolve_entities": False, "no_network": True, "huge_tree": False, "remove_blank_text": True}
TRANSACTION_TYPES = frozenset(
    {
        "authCaptureTransaction",
        "authOnlyTransaction",
        "priorAuthCaptureTransaction",
        "refundTransaction",
        "voidTransaction",
    }
)
SUCCESS = ("I00001", "Successful.")
NO_RECORDS = ("I00004", "No records found.")
UNSUCCESSFUL = ("E00027", "The transaction was unsuccessful.")
NOT_FOUND = ("E00040", "The record cannot be found.")
BAD_CREDENTIALS = ("E00007", "User authentication failed due to invalid authentication values.")


class ApiError(Exception):
    """A request-level failure answered as ``<ErrorResponse>``."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text


# --- reading requests ----------------------------------------------------------------------------


def _find(element: etree._Element | None, path: str) -> etree._Element | None:
    if element is None:
        return None
    return element.find("/".join(f"a:{part}" for part in path.split("/")), _Q)


def _text(element: etree._Element | None, path: str) -> str:
    found = _find(element, path)
    return (found.text or "").strip() if found is not None else ""


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def _payment(request: etree._Element | None, target: TransactionRequest) -> None:
    card = _find(request, "payment/creditCard")
    if card is not None:
        target.card = CardInput(_text(card, "cardNumber"), _text(card, "expirationDate"), _text(card, "cardCode"))
    opaque = _find(request, "payment/opaqueData")
    if opaque is not None:
        target.opaque_descriptor = _text(opaque, "dataDescriptor")
        target.opaque_value = _text(opaque, "dataValue")
    target.zip = _text(request, "billTo/zip")


def _transaction_request(root: etree._Element) -> TransactionRequest:
    tr = _find(root, "transactionRequest")
    if tr is None:
        raise ApiError("E00003", "An error occurred while parsing the XML request: transactionRequest is required.")
    kind = _text(tr, "transactionType")
    if kind not in TRANSACTION_TYPES:
        raise ApiError(
            "E00003",
            f"An error occurred while parsing the XML request: transactionType {kind!r} is not supported "
            "by the EasyPay sandbox emulator.",
        )
    req = TransactionRequest(
        transaction_type=kind,
        amount_text=_text(tr, "amount"),
        currency=_text(tr, "currencyCode") or "USD",
        customer_profile_id=_text(tr, "profile/customerProfileId"),
        payment_profile_id=_text(tr, "profile/paymentProfile/paymentProfileId"),
        profile_card_code=_text(tr, "profile/paymentProfile/cardCode"),
        ref_trans_id=_text(tr, "refTransId"),
        invoice_number=_text(tr, "order/invoiceNumber"),
        description=_text(tr, "order/description"),
        customer_id=_text(tr, "customer/id"),
        customer_email=_text(tr, "customer/email"),
        ref_id=_text(root, "refId"),
    )
    _payment(tr, req)
    for setting in tr.iterfind("a:transactionSettings/a:setting", _Q):
        if _text(setting, "settingName") == "duplicateWindow":
            try:
                req.duplicate_window = int(_text(setting, "settingValue"))
            except ValueError:
                raise ApiError("E00013", "The field is invalid: duplicateWindow.") from None
    return req


def _date(text: str, default: datetime) -> datetime:
    if not text:
        return default
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError("E00013", f"The field is invalid: {text!r} is not a date.") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _paging(root: etree._Element) -> tuple[int, int]:
    try:
        limit = int(_text(root, "paging/limit") or 1000)
        offset = int(_text(root, "paging/offset") or 1)
    except ValueError:
        raise ApiError("E00013", "The field is invalid: paging.") from None
    if not 1 <= limit <= 1000 or offset < 1:
        raise ApiError("E00013", "The field is invalid: paging limit is 1-1000 and offset starts at 1.")
    return limit, offset


def _sorted_page(root: etree._Element, rows: list[Transaction]) -> tuple[list[Transaction], int]:
    order_by = _text(root, "sorting/orderBy") or "submitTimeUTC"
    descending = _text(root, "sorting/orderDescending").lower() == "true"
    if order_by == "id":
        rows.sort(key=lambda t: int(t.trans_id), reverse=descending)
    else:
        rows.sort(key=lambda t: (t.submitted_at, int(t.trans_id)), reverse=descending)
    limit, offset = _paging(root)
    start = (offset - 1) * limit
    return rows[start : start + limit], len(rows)


# --- writing replies -----------------------------------------------------------------------------


def _sub(parent: etree._Element, tag: str, text: object = None, *, keep_empty: bool = False) -> etree._Element | None:
    if text is None or (text == "" and not keep_empty):
        return None
    element = etree.SubElement(parent, f"{{{NS}}}{tag}")
    element.text = str(text)
    return element


def _node(parent: etree._Element, tag: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{NS}}}{tag}")


def _root(name: str, ref_id: str = "") -> etree._Element:
    root = etree.Element(f"{{{NS}}}{name}", nsmap=_NSMAP)
    _sub(root, "refId", ref_id)
    return root


def _messages(parent: etree._Element, result: str, code: str, text: str) -> None:
    messages = _node(parent, "messages")
    _sub(messages, "resultCode", result)
    message = _node(messages, "message")
    _sub(message, "code", code)
    _sub(message, "text", text)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _local_time(value: datetime) -> str:
    # the sandbox account's time zone: Mountain Time, as Authorize.Net sandboxes default to
    return (value.astimezone(UTC) - timedelta(hours=7)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def serialize(root: etree._Element) -> bytes:
    return XML_HEADER + etree.tostring(root, encoding="utf-8")


def error_response(code: str, text: str) -> bytes:
    root = _root("ErrorResponse")
    _messages(root, "Error", code, text)
    return serialize(root)


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


def _transaction_details(state: SandboxState, root: etree._Element) -> etree._Element:
    tx = state.transaction(_text(root, "transId"))
    reply = _root("getTransactionDetailsResponse", _text(root, "refId"))
    if tx is None:
        _messages(reply, "Error", *NOT_FOUND)
        return reply
    _messages(reply, "Ok", *SUCCESS)
    t = _node(reply, "transaction")
    _sub(t, "transId", tx.trans_id)
    _sub(t, "refTransId", tx.ref_trans_id)
    _sub(t, "submitTimeUTC", _iso(tx.submitted_at))
    _sub(t, "submitTimeLocal", _local_time(tx.submitted_at))
    _sub(t, "transactionType", tx.transaction_type)
    _sub(t, "transactionStatus", tx.status)
    _sub(t, "responseCode", tx.response_code)
    _sub(t, "responseReasonCode", tx.reason_code)
    _sub(t, "responseReasonDescription", _reason_description(tx))
    _sub(t, "authCode", tx.auth_code)
    _sub(t, "AVSResponse", tx.avs)
    _sub(t, "cardCodeResponse", tx.cvv)
    if tx.response_code == 4:
        _sub(t, "FDSFilterAction", "hold")
        fds = _node(_node(t, "FDSFilters"), "FDSFilter")
        _sub(fds, "name", "Amount Filter")
        _sub(fds, "action", "hold")
    batch = state.batch(tx.batch_id) if tx.batch_id else None
    if batch is not None:
        b = _node(t, "batch")
        _sub(b, "batchId", batch.batch_id)
        _sub(b, "settlementTimeUTC", _iso(batch.settled_at))
        _sub(b, "settlementTimeLocal", _local_time(batch.settled_at))
        _sub(b, "settlementState", batch.state)
    if tx.invoice_number or tx.description:
        order = _node(t, "order")
        _sub(order, "invoiceNumber", tx.invoice_number)
        _sub(order, "description", tx.description)
    _sub(t, "authAmount", money(tx.auth_amount))
    _sub(t, "settleAmount", money(tx.settle_amount))
    _sub(t, "taxExempt", "false")
    credit_card = _node(_node(t, "payment"), "creditCard")
    _sub(credit_card, "cardNumber", tx.account_number)
    _sub(credit_card, "expirationDate", "XXXX")
    _sub(credit_card, "cardType", tx.account_type)
    if tx.customer_id or tx.customer_email:
        customer = _node(t, "customer")
        _sub(customer, "id", tx.customer_id)
        _sub(customer, "email", tx.customer_email)
    if tx.zip:
        _sub(_node(t, "billTo"), "zip", tx.zip)
    _sub(t, "recurringBilling", "false")
    _sub(t, "product", "Card Not Present")
    _sub(t, "marketType", "eCommerce")
    if tx.customer_profile_id:
        profile = _node(t, "profile")
        _sub(profile, "customerProfileId", tx.customer_profile_id)
        _sub(profile, "customerPaymentProfileId", tx.payment_profile_id)
    _sub(t, "networkTransId", tx.network_trans_id)
    return reply


def _reason_description(tx: Transaction) -> str:
    # getTransactionDetails words approvals as "Approval" and repeats the reason text otherwise
    return "Approval" if tx.response_code == 1 else tx.reason_text


def _summaries(reply: etree._Element, rows: list[Transaction], total: int) -> None:
    if rows:
        transactions = _node(reply, "transactions")
        for tx in rows:
            t = _node(transactions, "transaction")
            _sub(t, "transId", tx.trans_id)
            _sub(t, "submitTimeUTC", _iso(tx.submitted_at))
            _sub(t, "submitTimeLocal", _local_time(tx.submitted_at))
            _sub(t, "transactionStatus", tx.status)
            _sub(t, "invoiceNumber", tx.invoice_number)
            _sub(t, "accountType", tx.account_type)
            _sub(t, "accountNumber", tx.account_number)
            _sub(t, "settleAmount", money(tx.settle_amount))
            _sub(t, "marketType", "eCommerce")
            _sub(t, "product", "Card Not Present")
            if tx.customer_profile_id:
                profile = _node(t, "profile")
                _sub(profile, "customerProfileId", tx.customer_profile_id)
                _sub(profile, "customerPaymentProfileId", tx.payment_profile_id)
    _sub(reply, "totalNumInResultSet", total)


def _unsettled_list(state: SandboxState, root: etree._Element) -> etree._Element:
    status = _text(root, "status") or "any"
    if status not in ("any", "pendingApproval"):
        raise ApiError("E00013", "The field is invalid: status must be any or pendingApproval.")
    rows, total = _sorted_page(root, state.unsettled(pending_approval_only=status == "pendingApproval"))
    reply = _root("getUnsettledTransactionListResponse", _text(root, "refId"))
    _messages(reply, "Ok", *(SUCCESS if total else NO_RECORDS))
    _summaries(reply, rows, total)
    return reply


def _transaction_list(state: SandboxState, root: etree._Element) -> etree._Element:
    found = state.batch_transactions(_text(root, "batchId"))
    reply = _root("getTransactionListResponse", _text(root, "refId"))
    if found is None:
        _messages(reply, "Error", *NOT_FOUND)
        return reply
    rows, total = _sorted_page(root, found)
    _messages(reply, "Ok", *(SUCCESS if total else NO_RECORDS))
    _summaries(reply, rows, total)
    return reply


def _settled_batch_list(state: SandboxState, root: etree._Element) -> etree._Element:
    now = state.now()
    last = _date(_text(root, "lastSettlementDate"), now)
    first = _date(_text(root, "firstSettlementDate"), last - timedelta(hours=24))
    if last < first or last - first > timedelta(days=31):
        raise ApiError("E00013", "The date range can not exceed 31 days.")
    batches = state.settled_batches(first, last)
    reply = _root("getSettledBatchListResponse", _text(root, "refId"))
    _messages(reply, "Ok", *(SUCCESS if batches else NO_RECORDS))
    if batches:
        batch_list = _node(reply, "batchList")
        for batch in batches:
            b = _node(batch_list, "batch")
            _sub(b, "batchId", batch.batch_id)
            _sub(b, "settlementTimeUTC", _iso(batch.settled_at))
            _sub(b, "settlementTimeLocal", _local_time(batch.settled_at))
            _sub(b, "settlementState", batch.state)
            _sub(b, "paymentMethod", "creditCard")
            _sub(b, "marketType", "eCommerce")
            _sub(b, "product", "Card Not Present")
    return reply


def _payment_profile_request(element: etree._Element | None) -> TransactionRequest | None:
    if element is None or _find(element, "payment") is None:
        return None
    req = TransactionRequest("authOnlyTransaction")
    _payment(element, req)
    return req


def _create_customer_profile(state: SandboxState, root: etree._Element) -> etree._Element:
    profile = _find(root, "profile")
    payment_profile = _find(profile, "paymentProfiles")
    payment = _payment_profile_request(payment_profile)
    if payment is not None:
        payment.customer_id = _text(profile, "merchantCustomerId")
        payment.customer_email = _text(profile, "email")
    answer = state.create_customer_profile(
        merchant_customer_id=_text(profile, "merchantCustomerId"),
        email=_text(profile, "email"),
        description=_text(profile, "description"),
        payment=payment,
        customer_type=_text(payment_profile, "customerType"),
        default=_text(payment_profile, "defaultPaymentProfile").lower() == "true",
        validation_mode=_text(root, "validationMode") or "none",
    )
    reply = _root("createCustomerProfileResponse", _text(root, "refId"))
    _messages(reply, *(("Error", *answer.error) if answer.error else ("Ok", *SUCCESS)))
    _sub(reply, "customerProfileId", answer.customer_profile_id)
    ids = _node(reply, "customerPaymentProfileIdList")
    for payment_profile_id in answer.payment_profile_ids:
        _sub(ids, "numericString", payment_profile_id)
    _node(reply, "customerShippingAddressIdList")
    if answer.validation:
        responses = _node(reply, "validationDirectResponseList")
        for direct in answer.validation:
            _sub(responses, "string", direct)
    return reply


def _create_payment_profile(state: SandboxState, root: etree._Element) -> etree._Element:
    element = _find(root, "paymentProfile")
    payment = _payment_profile_request(element)
    if payment is None:
        raise ApiError("E00029", "Payment information is required.")
    answer = state.create_payment_profile(
        customer_profile_id=_text(root, "customerProfileId"),
        payment=payment,
        customer_type=_text(element, "customerType"),
        default=_text(element, "defaultPaymentProfile").lower() == "true",
        validation_mode=_text(root, "validationMode") or "none",
    )
    reply = _root("createCustomerPaymentProfileResponse", _text(root, "refId"))
    _messages(reply, *(("Error", *answer.error) if answer.error else ("Ok", *SUCCESS)))
    _sub(reply, "customerProfileId", answer.customer_profile_id)
    _sub(reply, "customerPaymentProfileId", answer.payment_profile_ids[0] if answer.payment_profile_ids else "")
    _sub(reply, "validationDirectResponse", answer.validation[0] if answer.validation else "")
    return reply


def _get_customer_profile(state: SandboxState, root: etree._Element) -> etree._Element:
    found = state.customer_profile(
        customer_profile_id=_text(root, "customerProfileId"),
        merchant_customer_id=_text(root, "merchantCustomerId"),
        email=_text(root, "email"),
    )
    reply = _root("getCustomerProfileResponse", _text(root, "refId"))
    if found is None:
        _messages(reply, "Error", *NOT_FOUND)
        return reply
    customer, payment_profiles = found
    _messages(reply, "Ok", *SUCCESS)
    p = _node(reply, "profile")
    _sub(p, "merchantCustomerId", customer.merchant_customer_id)
    _sub(p, "description", customer.description)
    _sub(p, "email", customer.email)
    _sub(p, "customerProfileId", customer.customer_profile_id)
    for stored in payment_profiles:
        pp = _node(p, "paymentProfiles")
        _sub(pp, "customerType", stored.customer_type)
        if stored.card.zip:
            _sub(_node(pp, "billTo"), "zip", stored.card.zip)
        _sub(pp, "customerProfileId", customer.customer_profile_id)
        _sub(pp, "customerPaymentProfileId", stored.payment_profile_id)
        _sub(pp, "defaultPaymentProfile", "true" if stored.default else "false")
        card = _node(_node(pp, "payment"), "creditCard")
        _sub(card, "cardNumber", stored.card.masked)
        _sub(card, "expirationDate", "XXXX")
        _sub(card, "cardType", stored.card.brand)
    _sub(p, "profileType", "regular")
    return reply


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
