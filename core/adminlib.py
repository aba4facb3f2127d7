"""Building blocks every app's admin uses: audited staff changes, read-only admins, confirmation pages.

- :class:`AuditedAdminMixin` turns Django's own ``log_addition``/``log_change``/``log_deletions`` hooks
  into audit rows (``admin.<model>.add|change|delete``), so no staff edit goes unrecorded.
- :class:`ReadOnlyAdminMixin` leaves the view permission only.
- :func:`confirmation_page` renders ``admin/easypay/confirm_action.html``, the intermediate page of
  custom actions (re-posting the selection with ``post=yes``).
- Display helpers shared by every changelist and detail page: :func:`money_display` (an amount with
  its currency's exponent, through ``core.money.format_money``), :func:`status_display` (a colored
  badge), :func:`truncated_display` (long text cut to the column, whole in the tooltip) and
  :func:`model_fields` (a model's fields for a read-only page, amounts swapped for their display),
  :func:`reference_display` (an object's public id over its merchant's name).

core records nothing itself: the audit app registers the function that writes a staff action's audit
row (:func:`register_admin_recorder`, from its ``AppConfig.ready``); without one every audited staff
action fails rather than going unrecorded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import quote
from django.core.exceptions import ImproperlyConfigured
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from .errors import EasyPayError
from .money import format_money

# -- display helpers --------------------------------------------------------------------------------

# The tone of each status value across the apps (payments, refunds, subscriptions, billing attempts,
# deliveries, inbound events, API keys, merchants, idempotency records); templates/admin/base_site.html
# colors them.
BADGE_TONES: dict[str, str] = {
    "captured": "ok",
    "succeeded": "ok",
    "processed": "ok",
    "active": "ok",
    "completed": "ok",
    "authorized": "info",
    "processing": "info",
    "in_progress": "info",
    "live": "info",
    "pending": "wait",
    "held": "warn",
    "paused": "wait",
    "partially_refunded": "wait",
    "test": "wait",
    "past_due": "warn",
    "unknown": "warn",
    "refunded": "muted",
    "voided": "muted",
    "cancelled": "muted",
    "revoked": "muted",
    "ignored": "muted",
    "declined": "bad",
    "failed": "bad",
    "suspended": "bad",
}


def status_badge(value: Any) -> SafeString | str:
    """A status value as a colored badge (``<span class="ep-badge ep-badge--ok">captured</span>``)."""
    if value is None or value == "":
        return ""
    raw = str(value)
    return format_html(
        '<span class="ep-badge ep-badge--{}" title="{}">{}</span>',
        BADGE_TONES.get(raw, "muted"),
        raw,
        raw.replace("_", " "),
    )


def money_html(amount, currency) -> SafeString | str:
    text = format_money(amount, currency)
    return format_html('<span class="ep-money">{}</span>', text) if text else ""


def _resolve(obj, path: str) -> Any:
    value = obj
    for part in path.split("__"):
        value = value.get(part) if isinstance(value, dict) else getattr(value, part, None)
        if value is None:
            return None
    return value


def money_display(field: str, *, currency: str = "currency", description: str | None = None) -> staticmethod:
    """A read-only column/field showing ``obj.<field>`` with the currency found at ``currency``
    (a ``__`` path, e.g. ``payment__currency``). Assign it to a ModelAdmin attribute and name that
    attribute in ``list_display`` / ``fields``."""

    @admin.display(description=description or field.replace("_", " "), ordering=field)
    def show(obj):
        return money_html(_resolve(obj, field), _resolve(obj, currency))

    return staticmethod(show)


def status_display(field: str = "status", *, description: str | None = None, test_tag: bool = False) -> staticmethod:
    """A status badge; with ``test_tag``, a ``test`` tag after it on objects made with a test key
    (``obj.is_test``)."""

    @admin.display(description=description or field.replace("_", " "), ordering=field)
    def show(obj):
        badge = status_badge(_resolve(obj, field))
        if test_tag and getattr(obj, "is_test", False):
            return format_html('{}<span class="ep-tag">test</span>', badge)
        return badge

    return staticmethod(show)


def reference_display(*, description: str, ordering: str = "created_at") -> staticmethod:
    """An object's public id (``obj.external_id``) over its merchant's name (whole in the tooltip)."""

    @admin.display(description=description, ordering=ordering)
    def show(obj):
        return format_html(
            '<span class="ep-id">{}</span><span class="ep-sub" title="{}">{}</span>',
            obj.external_id,
            obj.merchant.name,
            obj.merchant.name,
        )

    return staticmethod(show)


def truncated_display(
    field: str | Callable[[Any], Any], *, description: str, ordering: str | None = None, size: str = "m"
) -> staticmethod:
    """Long text cut with an ellipsis to the column (``size`` s/m/l, a share of the viewport width);
    the whole text in the tooltip."""

    @admin.display(description=description, ordering=ordering or (field if isinstance(field, str) else None))
    def show(obj):
        value = field(obj) if callable(field) else _resolve(obj, field)
        if value is None or value == "":
            return ""
        return format_html('<span class="ep-trunc ep-trunc--{}" title="{}">{}</span>', size, value, value)

    return staticmethod(show)


def model_fields(model, *, money: dict[str, str] | None = None, exclude: Iterable[str] = ()) -> tuple[str, ...]:
    """Every concrete field of ``model`` in declaration order, for a read-only detail page; a field in
    ``money`` (field -> attribute name of its :func:`money_display`) is replaced by that display."""
    money = money or {}
    skip = set(exclude)
    return tuple(money.get(f.name, f.name) for f in model._meta.fields if f.name not in skip)


def change_url(obj) -> str:
    """The admin page of ``obj``. Its key is quoted as the admin quotes it in its own links: the admin
    reads ``_24`` in a key as ``$`` (``evt_24...``, ``ntf_24...`` would name another row)."""
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(obj.pk)])


# -- audited staff actions ------------------------------------------------------------------------

AdminRecorder = Callable[..., Any]
_recorder: AdminRecorder | None = None


def register_admin_recorder(recorder: AdminRecorder) -> None:
    """Set the function writing a staff action's audit row, called as ``recorder(request=..., obj=...,
    action="admin.<model_name>.<verb>", data=..., result=..., status_code=...)``."""
    global _recorder
    _recorder = recorder


def audit_admin_action(request, obj, verb: str, *, data: Any = None, result: Any = None, status_code: int = 200):
    """One audit row for a staff action on ``obj`` (``admin.<model_name>.<verb>``)."""
    if _recorder is None:
        raise ImproperlyConfigured("no admin recorder registered: the audit app records every staff action")
    return _recorder(
        request=request,
        obj=obj,
        action=f"admin.{obj._meta.model_name}.{verb}",
        data=data,
        result=result,
        status_code=status_code,
    )


def admin_action_each(modeladmin, request, objects: Iterable[Any], *, verb: str, run: Callable[[Any], Any]) -> None:
    """Run a staff action's service on each selected object (``run(obj)`` returns it updated): a
    refusal (``EasyPayError``) is audited and shown as that object's error and the others go on;
    each success is audited with the status it reached and shown."""
    for obj in objects:
        try:
            updated = run(obj)
        except EasyPayError as exc:
            result = {"error": exc.code, "message": exc.message}
            audit_admin_action(request, obj, verb, result=result, status_code=exc.status_code)
            modeladmin.message_user(request, f"{obj.external_id}: {exc.message}", messages.ERROR)
            continue
        audit_admin_action(request, obj, verb, result={"status": updated.status})
        modeladmin.message_user(request, f"{obj.external_id}: {updated.status}.", messages.SUCCESS)


if TYPE_CHECKING:
    # What the mixins below are mixed into: the type checker sees ModelAdmin's methods they extend.
    _AdminBase = admin.ModelAdmin[Any]
else:
    _AdminBase = object


def _message_text(message) -> Any:
    return message if isinstance(message, list | dict | str) else str(message)


class AuditedAdminMixin(_AdminBase):
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


RETURN_FIELD = "_return_to"


class ReturnToObjectMixin(_AdminBase):
    """An action posted from an object's page (``_return_to=change``, one object) redirects back to
    that page when it is done, not to the changelist."""

    def response_action(self, request, queryset):
        response = super().response_action(request, queryset)
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        if (
            response is not None
            and response.status_code == 302
            and request.POST.get(RETURN_FIELD) == "change"
            and len(selected) == 1
        ):
            obj = self.get_object(request, selected[0])
            if obj is not None:
                response["Location"] = change_url(obj)
        return response


class EasyPayModelAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_per_page = 50
    show_full_result_count = False  # COUNT(*) on big tables is the admin's usual slow query


class ReadOnlyModelAdmin(ReadOnlyAdminMixin, EasyPayModelAdmin):
    pass


class ReadOnlyTabularInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True


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
    amount_label: str = "Amount to refund",
):
    """The intermediate page of a custom admin action; its form re-posts the action with ``post=yes``."""
    opts = modeladmin.model._meta
    # Started from an object's own page (its action buttons): Cancel goes back there, and so does the
    # redirect once the action ran (see :class:`ReturnToObjectMixin`).
    return_to = ""
    if request.POST.get(RETURN_FIELD) == "change" and len(rows) == 1:
        return_to = change_url(modeladmin.model(pk=rows[0]["pk"]))
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "opts": opts,
        "app_label": opts.app_label,
        "action_name": action,
        "queryset": queryset,
        "rows": rows,
        "ask_amount": ask_amount,
        "amount_label": amount_label,
        "ask_reason": ask_reason,
        "errors": errors or [],
        "note": note,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media,
        "return_field": RETURN_FIELD,
        "return_to": return_to,
    }
    return TemplateResponse(request, "admin/easypay/confirm_action.html", context, status=status)
