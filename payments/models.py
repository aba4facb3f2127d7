"""Payments, their refunds and the append-only processor log (idempotency records: core.models).

Money columns are ``DecimalField(12, 2)`` quantized to the currency's exponent (core.money); the
database itself refuses impossible totals (refunded above captured, captured above the amount).
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from core.models import TimeStampedModel
from core.money import format_amount, format_money


def new_external_id() -> str:
    return "pay_" + secrets.token_hex(12)


def new_reference() -> str:
    """The <= 20 character id sent to Authorize.Net as refId and invoiceNumber (finds a lost reply)."""
    return "ep" + secrets.token_hex(9)


class PaymentStatus(models.TextChoices):
    PENDING = "pending"
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    VOIDED = "voided"
    DECLINED = "declined"
    FAILED = "failed"
    HELD = "held"


class PendingOperation(models.TextChoices):
    """An internal marker (never shown by the API): a capture or void is in flight at the processor."""

    NONE = "", "none"
    CAPTURE = "capture"
    VOID = "void"


class Payment(TimeStampedModel):
    Status = PaymentStatus

    # No index of its own: every index below that starts with merchant serves it (each index is written
    # on every insert and status change).
    merchant = models.ForeignKey("accounts.Merchant", on_delete=models.PROTECT, related_name="payments", db_index=False)
    external_id = models.CharField(max_length=255, default=new_external_id)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.PENDING)
    payment_method = models.CharField(max_length=50, default="credit_card")
    customer_id = models.CharField(max_length=255, blank=True, default="")
    customer_email = models.EmailField(max_length=255, blank=True, default="")
    customer_name = models.CharField(max_length=255, blank=True, default="")
    customer_phone = models.CharField(max_length=16, blank=True, default="", help_text="E.164")
    card_last_four = models.CharField(max_length=4, blank=True, default="")
    card_brand = models.CharField(max_length=50, blank=True, default="")
    description = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    processor_response_code = models.CharField(max_length=10, blank=True, default="")
    processor_response_message = models.TextField(blank=True, default="")
    processor_transaction_id = models.CharField(max_length=255, blank=True, default="")
    # The processor account the transaction id belongs to (ids are unique per environment only).
    processor_environment = models.CharField(max_length=64, blank=True, default="")
    processor_reason_code = models.CharField(max_length=10, blank=True, default="")
    auth_code = models.CharField(max_length=20, blank=True, default="")
    avs_result = models.CharField(max_length=5, blank=True, default="")
    cvv_result = models.CharField(max_length=5, blank=True, default="")
    authorized_amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    captured_amount = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    refunded_amount = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    refund_count = models.PositiveIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    is_test = models.BooleanField(default=True)
    subscription = models.ForeignKey(
        "subscriptions.Subscription", null=True, blank=True, on_delete=models.SET_NULL, related_name="payments"
    )
    # Sent to the processor as refId/invoiceNumber so a charge whose reply was lost can be found.
    reference = models.CharField(max_length=20, default=new_reference, editable=False)
    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    # A capture or void in flight: taken and released under the row lock; makes them mutually exclusive.
    pending_operation = models.CharField(max_length=10, choices=PendingOperation.choices, blank=True, default="")

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(fields=["merchant", "external_id"], name="payment_external_id_per_merchant"),
            # A processor that lost its state hands out ids again: never record one twice.
            models.UniqueConstraint(
                fields=["processor_environment", "processor_transaction_id"],
                condition=~Q(processor_transaction_id=""),
                name="payment_processor_txn_unique",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(condition=Q(refunded_amount__gte=0), name="payment_refunded_not_negative"),
            models.CheckConstraint(condition=Q(captured_amount__gte=0), name="payment_captured_not_negative"),
            models.CheckConstraint(
                condition=Q(refunded_amount__lte=F("captured_amount")), name="payment_refunded_le_captured"
            ),
            models.CheckConstraint(condition=Q(captured_amount__lte=F("amount")), name="payment_captured_le_amount"),
            models.CheckConstraint(condition=Q(status__in=PaymentStatus.values), name="payment_status_valid"),
        ]
        indexes = [
            # The lists' exact order (core.pagination: newest first, id breaking ties), so a page is the
            # first rows of an index scan whatever the statistics say: on (merchant, -created_at) alone a
            # planner with stale statistics read every row of the merchant and sorted them (7 ms at 16k).
            models.Index(fields=["merchant", "-created_at", "-id"], name="payment_merchant_recent_idx"),
            # Only the states someone looks for (reconciliation, the support queue): a captured payment
            # is not entered into it, nor is every status change of one.
            models.Index(
                fields=["status"], name="payment_open_status_idx", condition=Q(status__in=["pending", "held"])
            ),
            models.Index(fields=["customer_id"], name="payment_customer_idx"),
            models.Index(fields=["processor_transaction_id"], name="payment_processor_txn_idx"),
            models.Index(fields=["reference"], name="payment_reference_idx"),
            # Only payments created under a key (a retry looks its key up): a list's ``merchant_id = ?``
            # cannot use it, so it never competes with payment_merchant_recent_idx for a page.
            models.Index(
                fields=["merchant", "idempotency_key"],
                name="payment_idem_key_idx",
                condition=~Q(idempotency_key=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.external_id} {format_money(self.amount, self.currency)} ({self.status})"


class Refund(TimeStampedModel):
    class Status(models.TextChoices):
        PENDING = "pending"  # reserved under the payment's lock; the processor is being asked
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        UNKNOWN = "unknown"  # the processor's reply was lost; still reserved until reconciled

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    reason = models.CharField(max_length=500, blank=True, default="")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    reference = models.CharField(max_length=20, default=new_reference, editable=False)
    processor_transaction_id = models.CharField(max_length=255, blank=True, default="")
    processor_response_code = models.CharField(max_length=10, blank=True, default="")
    processor_response_message = models.TextField(blank=True, default="")
    processed_at = models.DateTimeField(null=True, blank=True)
    # Back-office refunds: who asked, and whether it counts against the support cap
    # (``STAFF_SUPPORT_REFUND_LIMITS``, all capped refunds of the payment together).
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    support_capped = models.BooleanField(default=False)

    class Meta:
        ordering = ("created_at", "id")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "succeeded", "failed", "unknown"]), name="refund_status_valid"
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="refund_status_created_idx")]

    @property
    def currency(self) -> str:
        return self.payment.currency

    def __str__(self) -> str:
        return f"refund {format_amount(self.amount, self.currency)} of {self.payment_id} ({self.status})"


class PaymentEvent(models.Model):
    """Append-only log of every processor call and state change of a payment.

    Request data never holds card numbers or CVVs (EasyPay only ever sees tokens) nor the token.
    """

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="events", db_index=False)
    kind = models.CharField(max_length=50)
    request_data = models.JSONField(default=dict, blank=True)
    response_data = models.JSONField(default=dict, blank=True)
    from_status = models.CharField(max_length=20, blank=True, default="")
    to_status = models.CharField(max_length=20, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ("created_at", "id")
        indexes = [models.Index(fields=["payment", "created_at"], name="payment_event_payment_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.from_status}->{self.to_status}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise RuntimeError("payment events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise RuntimeError("payment events are append-only")
