"""Back office for payments, refunds and idempotency records.

Nothing about money is edited here: payments are read-only, and the refund, capture and void actions
call ``payments.services`` (the same code as ``POST /payments/{id}/refund|capture|cancel``) after a
confirmation page. Refunds by staff without ``audit.refund_payment_unlimited`` (the "support" group)
are capped by the service: ``STAFF_SUPPORT_REFUND_LIMITS``, per payment (all their refunds of it
together) and per currency, in minor units.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.utils.html import format_html
from rest_framework.exceptions import ValidationError as DRFValidationError

from core.adminlib import (
    ReadOnlyModelAdmin,
    ReadOnlyTabularInline,
    ReturnToObjectMixin,
    admin_action_each,
    audit_admin_action,
    confirmation_page,
    model_fields,
    money_display,
    money_html,
    reference_display,
    status_badge,
    status_display,
    truncated_display,
)
from core.exceptions import EasyPayError, RefundLimitExceeded
from core.models import IdempotencyRecord
from core.money import format_amount, parse_amount

from .inbound import admin as inbound_admin  # noqa: F401 (registers InboundEventAdmin)
from .models import Payment, PaymentEvent, Refund
from .selectors import payment_possible_operations, payment_refundable_amount
from .services import payment_capture, payment_void, refund_create

# The payment page's buttons: (operation, action, label, dangerous). Each posts the same admin action
# (and so the same confirmation page and service) as the changelist's action menu.
PAYMENT_BUTTONS = (
    ("capture", "capture_payments", "Capture", False),
    ("refund", "refund_payments", "Refund", False),
    ("void", "void_payments", "Void (cancel)", True),
)


class RefundInline(ReadOnlyTabularInline):
    model = Refund
    fields = ("id", "amount_money", "status_label", "reason", "processor_transaction_id", "created_at", "processed_at")
    readonly_fields = fields
    amount_money = money_display("amount", currency="payment__currency")
    status_label = status_display()


class PaymentEventInline(ReadOnlyTabularInline):
    model = PaymentEvent
    fields = ("created_at", "kind", "from_status", "to_status", "request_data", "response_data")
    readonly_fields = fields
    show_change_link = False


PAYMENT_MONEY = {
    "amount": "amount_money",
    "authorized_amount": "authorized_money",
    "captured_amount": "captured_money",
    "refunded_amount": "refunded_money",
    "status": "status_label",
}


@admin.register(Payment)
class PaymentAdmin(ReturnToObjectMixin, ReadOnlyModelAdmin):
    list_display = ("payment_label", "amount_money", "status_label", "customer_label", "card_label", "created_at")
    list_filter = ("status", "currency", "is_test", "created_at")
    search_fields = (
        "=id",
        "=external_id",
        "=customer_id",
        "customer_email",
        "=card_last_four",
        "=processor_transaction_id",
    )
    list_select_related = ("merchant",)
    date_hierarchy = "created_at"
    inlines = (RefundInline, PaymentEventInline)
    actions = ("refund_payments", "capture_payments", "void_payments")
    readonly_fields = model_fields(Payment, money=PAYMENT_MONEY, exclude=("idempotency_key", "pending_operation"))
    # Two or three short fields a line, grouped as staff read them (every amount carries its currency).
    fieldsets = (
        (
            None,
            {
                "fields": (
                    ("external_id", "status_label"),
                    ("merchant", "is_test"),
                    ("amount_money", "authorized_money"),
                    ("captured_money", "refunded_money"),
                    ("refund_count", "subscription"),
                )
            },
        ),
        (
            "Customer and card",
            {
                "fields": (
                    ("customer_name", "customer_email"),
                    ("customer_id", "payment_method"),
                    ("card_brand", "card_last_four"),
                    "description",
                    "metadata",
                )
            },
        ),
        (
            "Processor",
            {
                "fields": (
                    ("processor_transaction_id", "reference"),
                    ("processor_response_code", "processor_reason_code"),
                    "processor_response_message",
                    ("auth_code", "avs_result", "cvv_result"),
                )
            },
        ),
        ("Timeline", {"fields": (("created_at", "processed_at"), ("settled_at", "updated_at"), "id")}),
    )

    # -- display ------------------------------------------------------------------------------
    amount_money = money_display("amount")
    authorized_money = money_display("authorized_amount", description="authorized amount")
    captured_money = money_display("captured_amount", description="captured amount")
    refunded_money = money_display("refunded_amount", description="refunded amount")

    status_label = status_display(test_tag=True)
    payment_label = reference_display(description="payment")

    @staticmethod
    @admin.display(description="customer", ordering="customer_email")
    def customer_label(obj):
        first = obj.customer_name or obj.customer_id or obj.customer_email
        second = obj.customer_email if first != obj.customer_email else obj.customer_id
        if not first:
            return ""
        title = " / ".join(v for v in (obj.customer_name, obj.customer_email, obj.customer_id) if v)
        return format_html(
            '<span class="ep-trunc ep-trunc--l" title="{}">{}</span><span class="ep-sub">{}</span>',
            title,
            first,
            second,
        )

    @staticmethod
    @admin.display(description="card", ordering="card_last_four")
    def card_label(obj):
        if not obj.card_last_four:
            return ""
        return format_html(
            '<span class="ep-money">&bull;&bull;&bull;&bull;&nbsp;{}</span><span class="ep-sub">{}</span>',
            obj.card_last_four,
            obj.card_brand,
        )

    # -- the payment page's buttons -------------------------------------------------------------
    def payment_buttons(self, request, payment: Payment) -> list[dict]:
        """The buttons the page shows: what the payment's state allows and the user may do."""
        allowed = self.get_actions(request)  # already filtered by each action's permission
        possible = payment_possible_operations(payment=payment)
        return [
            {"action": action, "label": label, "danger": danger}
            for operation, action, label, danger in PAYMENT_BUTTONS
            if operation in possible and action in allowed
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        payment = self.get_object(request, unquote(object_id))
        extra = dict(extra_context or {})
        if payment is not None:
            extra["payment_buttons"] = self.payment_buttons(request, payment)
        return super().change_view(request, object_id, form_url, extra)

    def get_search_fields(self, request):
        # "=id" compares a UUID column: only worth it (and only valid) when the term is a UUID.
        term = (request.GET.get("q") or "").strip()
        try:
            uuid.UUID(term)
        except ValueError:
            return tuple(f for f in self.search_fields if f != "=id")
        return self.search_fields

    # -- permissions of the custom actions (audit.BackOffice permissions, see audit.staff_groups) --
    def has_refund_permission(self, request):
        return request.user.has_perm("audit.refund_payment")

    def has_capture_permission(self, request):
        return request.user.has_perm("audit.capture_payment")

    def has_void_permission(self, request):
        return request.user.has_perm("audit.void_payment")

    # -- actions -------------------------------------------------------------------------------
    def _rows(self, payments, *, with_amount: bool):
        rows = []
        for payment in payments:
            row = {
                "pk": payment.pk,
                "label": payment.external_id,
                "columns": [
                    ("Merchant", payment.merchant),
                    ("Status", status_badge(payment.status)),
                    ("Amount", money_html(payment.amount, payment.currency)),
                    ("Captured", money_html(payment.captured_amount, payment.currency)),
                    ("Refunded", money_html(payment.refunded_amount, payment.currency)),
                ],
            }
            if with_amount:
                row["amount"] = format_amount(payment_refundable_amount(payment=payment), payment.currency)
            rows.append(row)
        return rows

    @admin.action(description="Refund selected payments", permissions=["refund"])
    def refund_payments(self, request, queryset):
        payments = list(queryset.select_related("merchant").prefetch_related("refunds"))
        page: dict[str, Any] = {
            "action": "refund_payments",
            "title": "Refund payments",
            "ask_amount": True,
            "ask_reason": True,
        }
        if request.POST.get("post") != "yes":
            return confirmation_page(self, request, queryset, rows=self._rows(payments, with_amount=True), **page)

        amounts: dict = {}
        errors: list[str] = []
        for payment in payments:
            raw = (request.POST.get(f"amount_{payment.pk}") or "").strip()
            try:
                amounts[payment.pk] = (
                    parse_amount(raw, payment.currency) if raw else payment_refundable_amount(payment=payment)
                )
            except DRFValidationError as exc:
                errors.append(f"{payment.external_id}: {' '.join(str(m) for m in exc.detail)}")
        if errors:
            return confirmation_page(
                self, request, queryset, rows=self._rows(payments, with_amount=True), errors=errors, status=400, **page
            )

        # The support cap (cumulative per payment and currency) is the service's: refund_create
        # checks it under the payment's row lock, whoever calls it.
        reason = (request.POST.get("reason") or "").strip()[:500] or f"back office ({request.user.get_username()})"
        refused: list[str] = []
        for payment in payments:
            amount = amounts[payment.pk]
            data = {"amount": str(amount), "currency": payment.currency, "reason": reason}
            try:
                refund = refund_create(payment=payment, amount=amount, reason=reason, staff_user=request.user)
            except EasyPayError as exc:
                audit_admin_action(
                    request,
                    payment,
                    "refund",
                    data=data,
                    result={
                        "error": exc.code,
                        "message": exc.message,
                        **({"details": exc.details} if exc.details else {}),
                    },
                    status_code=exc.status_code,
                )
                if isinstance(exc, RefundLimitExceeded):
                    refused.append(f"{payment.external_id}: {exc.message}")
                else:
                    self.message_user(request, f"{payment.external_id}: {exc.message}", messages.ERROR)
                continue
            audit_admin_action(
                request, payment, "refund", data=data, result={"refund_id": str(refund.pk), "status": refund.status}
            )
            self.message_user(
                request,
                f"{payment.external_id}: refunded {format_amount(refund.amount, payment.currency)} {payment.currency} "
                f"(refund {refund.pk}, {refund.status}).",
                messages.SUCCESS,
            )
        if refused:
            fresh = list(queryset.select_related("merchant").prefetch_related("refunds"))
            return confirmation_page(
                self, request, queryset, rows=self._rows(fresh, with_amount=True), errors=refused, status=403, **page
            )
        return None

    def _simple_action(self, request, queryset, *, action: str, verb: str, title: str, service):
        payments = list(queryset.select_related("merchant"))
        if request.POST.get("post") != "yes":
            return confirmation_page(
                self, request, queryset, action=action, title=title, rows=self._rows(payments, with_amount=False)
            )
        admin_action_each(self, request, payments, verb=verb, run=lambda payment: service(payment=payment))
        return None

    @admin.action(description="Capture selected authorized payments", permissions=["capture"])
    def capture_payments(self, request, queryset):
        return self._simple_action(
            request,
            queryset,
            action="capture_payments",
            verb="capture",
            title="Capture payments",
            service=payment_capture,
        )

    @admin.action(description="Void (cancel) selected payments", permissions=["void"])
    def void_payments(self, request, queryset):
        return self._simple_action(
            request, queryset, action="void_payments", verb="void", title="Void payments", service=payment_void
        )


@admin.register(Refund)
class RefundAdmin(ReadOnlyModelAdmin):
    list_display = ("refund_label", "payment_label", "amount_money", "status_label", "reason_short", "created_at")
    list_filter = ("status", "created_at")
    fields = model_fields(Refund, money={"amount": "amount_money", "status": "status_label"})
    readonly_fields = fields
    amount_money = money_display("amount", currency="payment__currency")
    status_label = status_display()
    refund_label = truncated_display(lambda r: str(r.pk), description="refund", ordering="created_at", size="s")
    payment_label = truncated_display("payment__external_id", description="payment", size="m")
    reason_short = truncated_display("reason", description="reason", size="l")
    search_fields = ("=payment__external_id", "=processor_transaction_id", "=payment__customer_id")
    list_select_related = ("payment",)
    raw_id_fields = ("payment",)


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyModelAdmin):
    list_display = (
        "key_short",
        "merchant_short",
        "status_label",
        "request_method",
        "path_short",
        "response_status",
        "expires_at",
    )
    list_filter = ("status",)
    key_short = truncated_display("key", description="key", size="m")
    merchant_short = truncated_display("merchant__name", description="merchant", ordering="merchant__name")
    path_short = truncated_display("request_path", description="path", size="m")
    status_label = status_display()
    search_fields = ("=key", "=resource_id")
    list_select_related = ("merchant",)
    # The stored response body is the API's answer (no card data), but it is not needed here.
    exclude = ("response_body",)
