"""The emulator's XML vocabulary: the namespace, result codes, and reading requests / writing replies.

Requests are read with lxml (no pyxb: this is the hot path), replies are written in the XSD's
element order (the SDK's pyxb bindings reject anything else) in the default namespace, UTF-8 with
a BOM, exactly as the SDK expects.
"""

from __future__ import annotations

import codecs
from datetime import UTC, datetime, timedelta

from lxml import etree

from .state import (
    CardInput,
    Transaction,
    TransactionRequest,
)

NS = "AnetApi/xml/v1/schema/AnetApiSchema.xsd"
_NSMAP = {None: NS, "xsi": "http://www.w3.org/2001/XMLSchema-instance", "xsd": "http://www.w3.org/2001/XMLSchema"}
_TAG_SETTINGS = f"{{{NS}}}transactionSettings"
_TAG_SETTING = f"{{{NS}}}setting"
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


_PATHS: dict[str, tuple[str, ...]] = {}  # "a/b" -> ("{NS}a", "{NS}b"); the paths are this package's literals


def _first(element: etree._Element, tags: tuple[str, ...]) -> etree._Element | None:
    """The first element down ``tags`` in document order, as ElementPath's ``find`` would answer."""
    rest = tags[1:]
    for child in element.iterchildren(tags[0]):
        if not rest:
            return child
        found = _first(child, rest)
        if found is not None:
            return found
    return None


def _find(element: etree._Element | None, path: str) -> etree._Element | None:
    # ``element.find("a:x/a:y", {"a": NS})`` compiles and runs the path in Python on every call;
    # walking the children by their namespaced tag is the same answer for a fraction of the cost.
    if element is None:
        return None
    tags = _PATHS.get(path)
    if tags is None:
        tags = _PATHS.setdefault(path, tuple(f"{{{NS}}}{part}" for part in path.split("/")))
    if len(tags) == 1:
        return next(element.iterchildren(tags[0]), None)
    return _first(element, tags)


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
    settings = (s for group in tr.iterchildren(_TAG_SETTINGS) for s in group.iterchildren(_TAG_SETTING))
    for setting in settings:
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
