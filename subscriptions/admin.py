"""Back office for subscriptions: read-only records; pause, resume and cancel through the services."""

from __future__ import annotations

from django.contrib import admin

from core.adminlib import (
    ReadOnlyModelAdmin,
    ReadOnlyTabularInline,
    admin_action_each,
    confirmation_page,
    model_fields,
    money_display,
    money_html,
    reference_display,
    status_badge,
    status_display,
    truncated_display,
)

from .models import BillingAttempt, Subscription
from .services import subscription_cancel, subscription_pause, subscription_resume


class BillingAttemptInline(ReadOnlyTabularInline):
    model = BillingAttempt
    fk_name = "subscription"
    fields = ("period_start", "attempt_number", "status_label", "amount_money", "payment", "failure_reason")
    readonly_fields = fields
    amount_money = money_display("amount")
    status_label = status_display()


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyModelAdmin):
    list_display = (
        "subscription_label",
        "customer_short",
        "plan_short",
        "amount_money",
        "billing_cycle",
        "status_label",
        "next_billing_date",
    )
    list_filter = ("status", "billing_cycle", "currency", "is_test", "next_billing_date")
    search_fields = ("=external_id", "=customer_id", "customer_email", "=plan_id")
    list_select_related = ("merchant",)
    inlines = (BillingAttemptInline,)
    actions = ("pause_subscriptions", "resume_subscriptions", "cancel_subscriptions")
    # payment_method holds a token or processor profile reference: never shown.
    exclude = ("payment_method",)
    fields = model_fields(
        Subscription, money={"amount": "amount_money", "status": "status_label"}, exclude=("payment_method",)
    )
    readonly_fields = fields
    amount_money = money_display("amount")
    customer_short = truncated_display(
        lambda s: s.customer_email or s.customer_id, description="customer", ordering="customer_email", size="l"
    )
    plan_short = truncated_display("plan_id", description="plan", size="m")

    status_label = status_display(test_tag=True)
    subscription_label = reference_display(description="subscription")

    def has_manage_permission(self, request):
        return request.user.has_perm("audit.manage_subscription")

    def _run(self, request, queryset, *, action: str, verb: str, title: str, service):
        subs = list(queryset.select_related("merchant"))
        if request.POST.get("post") != "yes":
            rows = [
                {
                    "pk": s.pk,
                    "label": s.external_id,
                    "columns": [
                        ("Merchant", s.merchant),
                        ("Customer", s.customer_id),
                        ("Amount", money_html(s.amount, s.currency)),
                        ("Status", status_badge(s.status)),
                        ("Next billing", s.next_billing_date or "-"),
                    ],
                }
                for s in subs
            ]
            return confirmation_page(self, request, queryset, action=action, title=title, rows=rows)
        admin_action_each(self, request, subs, verb=verb, run=lambda sub: service(subscription=sub))
        return None

    @admin.action(description="Pause selected subscriptions", permissions=["manage"])
    def pause_subscriptions(self, request, queryset):
        return self._run(
            request,
            queryset,
            action="pause_subscriptions",
            verb="pause",
            title="Pause subscriptions",
            service=subscription_pause,
        )

    @admin.action(description="Resume selected subscriptions", permissions=["manage"])
    def resume_subscriptions(self, request, queryset):
        return self._run(
            request,
            queryset,
            action="resume_subscriptions",
            verb="resume",
            title="Resume subscriptions",
            service=subscription_resume,
        )

    @admin.action(description="Cancel selected subscriptions", permissions=["manage"])
    def cancel_subscriptions(self, request, queryset):
        return self._run(
            request,
            queryset,
            action="cancel_subscriptions",
            verb="cancel",
            title="Cancel subscriptions",
            service=subscription_cancel,
        )


@admin.register(BillingAttempt)
class BillingAttemptAdmin(ReadOnlyModelAdmin):
    list_display = (
        "subscription_short",
        "period_start",
        "attempt_number",
        "status_label",
        "amount_money",
        "payment_short",
        "failure_reason",
    )
    list_filter = ("status", "period_start")
    list_select_related = ("subscription", "payment")
    fields = model_fields(BillingAttempt, money={"amount": "amount_money", "status": "status_label"})
    readonly_fields = fields
    amount_money = money_display("amount")
    status_label = status_display()
    subscription_short = truncated_display(
        "subscription__external_id", description="subscription", ordering="subscription__external_id", size="m"
    )
    payment_short = truncated_display("payment_external_id", description="payment", size="m")
    search_fields = ("=subscription__external_id", "=payment_external_id")
    raw_id_fields = ("subscription", "payment")
