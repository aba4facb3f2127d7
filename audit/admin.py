"""Admin of the audit trail (read-only), the back-office dashboard and the GDPR tools.

The dashboard (``/admin/dashboard/``) and the GDPR pages (``/admin/gdpr/...``) are added to the default
admin site's URLs here, so ``config/urls.py`` keeps its single ``admin.site.urls``.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html

from accounts.models import Merchant
from core.adminlib import ReadOnlyModelAdmin, truncated_display

from .dashboard import dashboard_context
from .models import AuditLog
from .services import audit_staff_action, customer_data_erase, customer_data_export


def _pretty(value) -> str:
    return format_html("<pre style='white-space:pre-wrap'>{}</pre>", json.dumps(value, indent=2, sort_keys=True))


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyModelAdmin):
    list_display = (
        "created_at",
        "action_short",
        "resource_type",
        "resource_short",
        "merchant_short",
        "actor_type",
        "actor_short",
        "status_code",
        "duration_ms",
    )
    action_short = truncated_display("action", description="action", size="m")
    resource_short = truncated_display("resource_id", description="resource id", size="s")
    merchant_short = truncated_display("merchant__name", description="merchant", ordering="merchant__name", size="m")
    actor_short = truncated_display("actor_id", description="actor id", size="s")
    list_filter = ("actor_type", "service_name", "resource_type", "created_at")
    search_fields = ("=correlation_id", "=resource_id", "action", "=actor_id")
    list_select_related = ("merchant",)
    date_hierarchy = "created_at"
    fields = (
        "id",
        "created_at",
        "correlation_id",
        "service_name",
        "action",
        "resource_type",
        "resource_id",
        "merchant",
        "actor_type",
        "actor_id",
        "ip_address",
        "user_agent",
        "status_code",
        "duration_ms",
        "request_data_pretty",
        "response_data_pretty",
    )
    readonly_fields = fields

    @admin.display(description="request data")
    def request_data_pretty(self, obj):
        return _pretty(obj.request_data)

    @admin.display(description="response data")
    def response_data_pretty(self, obj):
        return _pretty(obj.response_data)

    def get_actions(self, request):
        return {}  # no bulk delete, no action of any kind on the trail


# --- Dashboard ------------------------------------------------------------------------------------


def dashboard_view(request):
    if not (request.user.is_superuser or request.user.has_perm("audit.view_dashboard")):
        raise PermissionDenied
    context = {**admin.site.each_context(request), "title": "Dashboard", **dashboard_context()}
    return TemplateResponse(request, "admin/easypay/dashboard.html", context)


# --- GDPR -----------------------------------------------------------------------------------------


class CustomerForm(forms.Form):
    merchant = forms.ModelChoiceField(queryset=Merchant.objects.order_by("name"))
    customer_id = forms.CharField(max_length=255)
    operation = forms.ChoiceField(choices=[("export", "Export (JSON download)"), ("erase", "Erase personal data")])
    confirm = forms.BooleanField(
        required=False, help_text="Required for erasure: names and emails are replaced for good."
    )


def gdpr_view(request):
    user = request.user
    can_export = user.has_perm("audit.gdpr_export")
    can_erase = user.has_perm("audit.gdpr_erase")
    if not (can_export or can_erase):
        raise PermissionDenied
    form = CustomerForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        merchant = form.cleaned_data["merchant"]
        customer_id = form.cleaned_data["customer_id"].strip()
        if form.cleaned_data["operation"] == "export":
            if not can_export:
                raise PermissionDenied
            data = customer_data_export(merchant=merchant, customer_id=customer_id)
            audit_staff_action(
                request=request,
                action="admin.customer.export",
                resource_type="customer",
                resource_id=customer_id,
                merchant_id=merchant.pk,
                data={"customer_id": customer_id},
                result={key: len(value) for key, value in data.items() if isinstance(value, list)},
            )
            response = HttpResponse(
                json.dumps(data, cls=DjangoJSONEncoder, indent=2), content_type="application/json; charset=utf-8"
            )
            safe_id = "".join(c if c.isalnum() or c in "-_" else "_" for c in customer_id)[:64]
            response["Content-Disposition"] = f'attachment; filename="customer-{safe_id}.json"'
            response["Cache-Control"] = "no-store"
            return response
        if not can_erase:
            raise PermissionDenied
        if not form.cleaned_data["confirm"]:
            form.add_error("confirm", "Tick the box to confirm the erasure.")
            status = 400
        else:
            counts = customer_data_erase(merchant=merchant, customer_id=customer_id, actor=user, request=request)
            messages.success(
                request,
                f"Erased the personal data of customer {customer_id}: "
                + ", ".join(f"{n} {key}" for key, n in counts.items()),
            )
            form = CustomerForm()
    context = {
        **admin.site.each_context(request),
        "title": "Customer data (GDPR)",
        "form": form,
        "can_export": can_export,
        "can_erase": can_erase,
    }
    return TemplateResponse(request, "admin/easypay/gdpr.html", context, status=status)


def _extra_admin_urls(site):
    original = site.get_urls

    def get_urls():
        return [
            path("dashboard/", site.admin_view(dashboard_view), name="dashboard"),
            path("gdpr/", site.admin_view(gdpr_view), name="gdpr"),
            *original(),
        ]

    site.get_urls = get_urls


_extra_admin_urls(admin.site)
