"""Payment writes: the state machine, money movements at the processor, and reconciliation.

One module per idea: ``charges`` (payment_create), ``captures`` (payment_capture, payment_void),
``refunds`` (refund_create, refund_reconcile, the support cap), ``updates`` (payment_update),
``sync`` (payment_refresh_from_processor, payment_reconcile) and ``common`` (locking, transitions,
logging). This package re-exports the public services, so callers import them from here.

Every money movement follows one pattern (never a lock or open transaction across the HTTP call):

1. under ``select_for_update`` check the state, reserve what the call will use (a pending refund,
   a ``pending_operation`` marker) and commit;
2. call the processor with no transaction open;
3. lock the row again and record the outcome, emitting the merchant's event in the same
   transaction (the outbox), or release the reservation.

State machine (statuses the API shows)::

    pending -> authorized | captured | declined | failed | held
    held -> authorized | captured | declined | voided | failed      (the processor's review)
    authorized -> captured | voided
    captured -> partially_refunded -> refunded;  captured -> voided while not settled
"""

from payments.services.captures import payment_capture, payment_void
from payments.services.charges import ChargeResult, payment_create
from payments.services.common import (
    EVENT_FOR_STATUS,
    MONEY_STATUSES,
    REFRESH_TRANSITIONS,
    STATUS_FOR_STATE,
    reconcile_after_seconds,
    reconcile_grace_seconds,
)
from payments.services.refunds import SUPPORT_UNLIMITED_PERMISSION, refund_create, refund_reconcile
from payments.services.sync import payment_reconcile, payment_refresh_from_processor
from payments.services.updates import UPDATABLE_FIELDS, payment_update

__all__ = [
    "EVENT_FOR_STATUS",
    "MONEY_STATUSES",
    "REFRESH_TRANSITIONS",
    "STATUS_FOR_STATE",
    "SUPPORT_UNLIMITED_PERMISSION",
    "UPDATABLE_FIELDS",
    "ChargeResult",
    "payment_capture",
    "payment_create",
    "payment_reconcile",
    "payment_refresh_from_processor",
    "payment_update",
    "payment_void",
    "reconcile_after_seconds",
    "reconcile_grace_seconds",
    "refund_create",
    "refund_reconcile",
]
