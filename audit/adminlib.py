"""Building blocks every app's admin uses: audited staff changes, read-only admins, confirmation pages.

- :class:`AuditedAdminMixin` turns Django's own ``log_addition``/``log_change``/``log_deletions`` hooks
  into audit rows (``admin.<model>.add|change|delete``), so no staff edit goes unrecorded.
- :class:`ReadOnlyAdminMixin` leaves the view permission only.
- :func:`confirmation_page` renders ``admin/easypay/confirm_action.html``, the intermediate page of
  custom actions (re-posting the selection with ``post=yes``).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

from .services import audit_staff_action


def merchant_id_of(obj) -> Any:
    from accounts.models import Merchant

    if isinstance(obj, Merchant):
        return obj.pk
    merchant_id = getattr(obj, "merchant_id", None)
    if merchant_id is None and hasattr(obj, "payment"):
        merchant_id = getattr(getattr(obj, "payment", None), "merchant_id", None)
    if merchant_id is None and hasattr(obj, "endpoint"):
        merchant_id = getattr(getattr(obj, "endpoint", None), "merchant_id", None)
    return merchant_id


def audit_admin_action(request, obj, verb: str, *, data: Any = None, result: Any = None, status_code: int = 200):
    """One audit row for a staff action on ``obj`` (``admin.<model_name>.<verb>``)."""
    model_name = obj._meta.model_name
    return audit_staff_action(
        request=request,
        action=f"admin.{model_name}.{verb}",
        resource_type=model_name,
        resource_id=obj.pk,
        merchant_id=merchant_id_of(obj),
        data=data,
        result=result,
        status_code=status_code,
    )


def _message_text(message) -> Any:
    return message if isinstance(message, list | dict | str) else str(message)


class AuditedAdminMixin:
    def log_addition(self, request, obj, message):
        entry = super().log_addition(request, obj, message)
        audit_admin_action(request, obj, "add", data={"message": _message_text(message)})
        return entry

    def log_change(self, request, obj, message):
        entry = super().log_change(request, obj, message)
        audit_admin_action(request, obj, "change", data={"message": _message_text(message)})
        return entry

    def log_deletions(self, request, queryset):
        objects = list(queryset)
        entries = super().log_deletions(request, queryset)
        for obj in objects:
            audit_admin_action(request, obj, "delete", data={"repr": str(obj)[:200]})
        return entries


class ReadOnlyAdminMixin:
    """Visible to whoever may view the model; nobody adds, edits or deletes through the admin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class EasyPayModelAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_per_page = 50
    show_full_result_count = False  # COUNT(*) on big tables is the admin's usual slow query


class ReadOnlyModelAdmin(ReadOnlyAdminMixin, EasyPayModelAdmin):
    pass


class ReadOnlyTabularInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def confirmation_page(
    modeladmin,
    request,
    queryset,
    *,
    action: str,
    title: str,
    rows: list[dict[str, Any]],
    ask_amount: bool = False,
    ask_reason: bool = False,
    errors: list[str] | None = None,
    status: int = 200,
    note: str = "",
):
    """The intermediate page of a custom admin action; its form re-posts the action with ``post=yes``."""
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "opts": opts,
        "app_label": opts.app_label,
        "action_name": action,
        "queryset": queryset,
        "rows": rows,
        "ask_amount": ask_amount,
        "ask_reason": ask_reason,
        "errors": errors or [],
        "note": note,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media,
    }
    return TemplateResponse(request, "admin/easypay/confirm_action.html", context, status=status)
