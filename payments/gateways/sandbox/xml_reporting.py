"""The emulator's transaction reporting API: transaction details, unsettled and batch lists, settled batches."""

from __future__ import annotations

from datetime import timedelta

from lxml import etree

from .state import (
    SandboxState,
    Transaction,
    money,
)
from .xmldoc import (
    NO_RECORDS,
    NOT_FOUND,
    SUCCESS,
    ApiError,
    _date,
    _iso,
    _local_time,
    _messages,
    _node,
    _root,
    _sorted_page,
    _sub,
    _text,
)


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
