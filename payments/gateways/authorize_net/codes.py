"""Authorize.Net's own words (response, reason, message and status codes) and what they mean to EasyPay.

The adapter's vocabulary ends here: everything outside ``payments.gateways.authorize_net`` sees
:class:`~payments.gateways.base.Outcome`, :class:`~payments.gateways.base.TransactionState`,
:class:`~payments.gateways.base.TransactionKind` and :class:`~payments.gateways.base.Refusal`.
"""

from __future__ import annotations

from ..base import Refusal, TransactionKind, TransactionState

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
BRANDS = {
    "visa": "visa",
    "mastercard": "mastercard",
    "americanexpress": "amex",
    "amex": "amex",
    "discover": "discover",
    "jcb": "jcb",
    "dinersclub": "diners",
    "diners": "diners",
}
# createCustomerProfile / createCustomerPaymentProfile: "a duplicate record already exists" (its id is in the text).
DUPLICATE_PROFILE = "E00039"
