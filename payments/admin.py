"""Back office for payments, refunds and idempotency records.

Nothing about money is edited here: payments are read-only, and the refund, capture and void actions
call ``payments.services`` (the same code as ``POST /payments/{id}/refund|capture|cancel``) after a
confirmation page. Refunds by staff without ``audit.refund_payment_unlimited`` (the "support" group)
are capped by the service: ``STAFF_SUPPORT_REFUND_LIMITS``, per payment (all their refunds of it
together) and per currency, in minor units.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.contrib import admin, messages
from rest_framework.exceptions import ValidationError as DRFValidationError

from audit.adminlib import ReadOnlyModelAdmin, ReadOnlyTabularInline, audit_admin_action, confirmation_page
from core.exceptions import EasyPayError, RefundLimitExceeded
from core.money import format_amount, parse_amount

from .models import IdempotencyRecord, Payment, PaymentEvent, Refund
from .services import payment_capture, payment_void, refund_create


class RefundInline(ReadOnlyTabularInline):
    model = Refund
    fields = ("id", "amount", "status", "reason", "processor_transaction_id", "created_at", "processed_at")
    readonly_fields = fields


class PaymentEventInline(ReadOnlyTabularInline):
    model = PaymentEvent
    fields = ("created_at", "kind", "from_status", "to_status", "request_data", "response_data")
    readonly_fields = fields
    show_change_link = False


def _refundable(payment: Payment) -> Decimal:
    reserved = sum(
        (r.amount for r in payment.refunds.all() if r.status in (Refund.Status.PENDING, Refund.Status.UNKNOWN)),
        Decimal(0),
    )
    return max(payment.captured_amount - payment.refunded_amount - reserved, Decimal(0))


@admin.register(Payment)
class PaymentAdmin(ReadOnlyModelAdmin):
    list_display = (
        "external_id",
        "merchant",
        "amount",
        "currency",
        "status",
        "customer_id",
        "customer_email",
        "card_last_four",
        "is_test",
        "created_at",
    )
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
    readonly_fields = tuple(
        f.name for f in Payment._meta.fields if f.name not in ("idempotency_key", "pending_operation")
    )
    fields = readonly_fields

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
        for p in payments:
            row = {
                "pk": p.pk,
                "label": p.external_id,
                "columns": [
                    ("Merchant", p.merchant),
                    ("Status", p.status),
                    ("Amount", f"{format_amount(p.amount, p.currency)} {p.currency}"),
                    ("Captured", format_amount(p.captured_amount, p.currency)),
                    ("Refunded", format_amount(p.refunded_amount, p.currency)),
                ],
            }
            if with_amount:
                row["amount"] = format_amount(_refundable(p), p.currency)
            rows.append(row)
        return rows

    @admin.action(description="Refund selected payments", permissions=["refund"])
    def refund_payments(self, request, queryset):
        payments = list(queryset.select_related("merchant").prefetch_related("refunds"))
        page = {"action": "refund_payments", "title": "Refund payments", "ask_amount": True, "ask_reason": True}
        if request.POST.get("post") != "yes":
            return confirmation_page(self, request, queryset, rows=self._rows(payments, with_amount=True), **page)

        amounts: dict = {}
        errors: list[str] = []
        for p in payments:
            raw = (request.POST.get(f"amount_{p.pk}") or "").strip()
            try:
                amounts[p.pk] = parse_amount(raw, p.currency) if raw else _refundable(p)
            except DRFValidationError as exc:
                errors.append(f"{p.external_id}: {' '.join(str(m) for m in exc.detail)}")
        if errors:
            return confirmation_page(
                self, request, queryset, rows=self._rows(payments, with_amount=True), errors=errors, status=400, **page
            )

        # The support cap (cumulative per payment and currency) is the service's: refund_create
        # checks it under the payment's row lock, whoever calls it.
        reason = (request.POST.get("reason") or "").strip()[:500] or f"back office ({request.user.get_username()})"
        refused: list[str] = []
        for p in payments:
            amount = amounts[p.pk]
            data = {"amount": str(amount), "currency": p.currency, "reason": reason}
            try:
                refund = refund_create(payment=p, amount=amount, reason=reason, staff_user=request.user)
            except EasyPayError as exc:
                audit_admin_action(
                    request,
                    p,
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
                    refused.append(f"{p.external_id}: {exc.message}")
                else:
                    self.message_user(request, f"{p.external_id}: {exc.message}", messages.ERROR)
                continue
            audit_admin_action(
                request, p, "refund", data=data, result={"refund_id": str(refund.pk), "status": refund.status}
            )
            self.message_user(
                request,
                f"{p.external_id}: refunded {format_amount(refund.amount, p.currency)} {p.currency} "
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
        for p in payments:
            try:
                updated = service(payment=p)
            except EasyPayError as exc:
                audit_admin_action(
                    request, p, verb, result={"error": exc.code, "message": exc.message}, status_code=exc.status_code
                )
                self.message_user(request, f"{p.external_id}: {exc.message}", messages.ERROR)
                continue
            audit_admin_action(request, p, verb, result={"status": updated.status})
            self.message_user(request, f"{p.external_id}: {updated.status}.", messages.SUCCESS)
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
    list_display = ("id", "payment", "amount", "status", "reason", "created_at", "processed_at")
    list_filter = ("status", "created_at")
    search_fields = ("=payment__external_id", "=processor_transaction_id", "=payment__customer_id")
    list_select_related = ("payment",)
    raw_id_fields = ("payment",)


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyModelAdmin):
    list_display = ("key", "merchant", "status", "request_method", "request_path", "response_status", "expires_at")
    list_filter = ("status",)
    search_fields = ("=key", "=resource_id")
    list_select_related = ("merchant",)
    # The stored response body is the API's answer (no card data), but it is not needed here.
    exclude = ("response_body",)
