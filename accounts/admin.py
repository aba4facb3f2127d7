"""Back office for merchants, their users and their API keys.

API keys are created and changed only through ``accounts.services`` (so the auth cache is invalidated
and the secret is generated and hashed in one place); the secret and its hash are never shown, except
the full key once, on the page that follows creation.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse

from core.adminlib import (
    AuditedAdminMixin,
    EasyPayModelAdmin,
    ReadOnlyModelAdmin,
    ReadOnlyTabularInline,
    audit_admin_action,
    confirmation_page,
    status_badge,
    status_display,
    truncated_display,
)

from . import scopes
from .ipfilter import normalize_cidrs
from .models import APIKey, Merchant, MerchantUser, RevokedToken
from .selectors import merchant_max_active_api_keys
from .services import (
    MERCHANT_LIMIT_FIELDS,
    UPDATABLE_FIELDS,
    api_key_create,
    api_key_revoke,
    api_key_update,
    merchant_keys_invalidate,
    merchant_reactivate,
    merchant_suspend,
)

User = get_user_model()


class MerchantUserInline(admin.TabularInline):
    model = MerchantUser
    extra = 0
    raw_id_fields = ("user",)
    fields = ("user", "permissions", "created_at")
    readonly_fields = ("created_at",)


class APIKeyInline(ReadOnlyTabularInline):
    model = APIKey
    fields = ("key_id", "name", "status", "mode", "last_used_at")
    readonly_fields = fields


@admin.register(Merchant)
class MerchantAdmin(EasyPayModelAdmin):
    list_display = ("name_short", "email_short", "status_label", "created_at")
    list_filter = ("status",)
    name_short = truncated_display("name", description="name", size="l")
    email_short = truncated_display("email", description="email", size="l")
    status_label = status_display()
    search_fields = ("name", "email", "=id")
    readonly_fields = ("id", "created_at", "updated_at")
    inlines = (MerchantUserInline, APIKeyInline)

    def has_delete_permission(self, request, obj=None):
        return False  # a merchant with history is suspended, never deleted

    fieldsets = (
        (None, {"fields": ("id", "name", "email", "status", "created_at", "updated_at")}),
        (
            "Limits (empty: the defaults in settings)",
            {
                "fields": ("rate_limit_per_minute", "rate_limit_per_hour", "rate_limit_per_day", "max_active_api_keys"),
                "description": "Aggregate rate limits of all the merchant's API keys and logins together, "
                "and the most active API keys it may have.",
            },
        ),
    )

    def save_model(self, request, obj, form, change):
        changed = set(form.changed_data) if change else set()
        if "status" not in changed:
            super().save_model(request, obj, form, change)
        else:
            # The other fields are saved as edited; the status goes through its service.
            wanted = obj.status
            obj.status = Merchant.objects.values_list("status", flat=True).get(pk=obj.pk)
            super().save_model(request, obj, form, change)
            if wanted == Merchant.Status.SUSPENDED:
                obj.status = merchant_suspend(merchant=obj).status
            else:
                obj.status = merchant_reactivate(merchant=obj).status
        if set(MERCHANT_LIMIT_FIELDS) & changed:
            # Authentication caches a key snapshot that includes the merchant's limits.
            merchant_keys_invalidate(obj)


class MerchantMembershipInline(admin.StackedInline):
    model = MerchantUser
    fk_name = "user"
    extra = 0
    max_num = 1
    can_delete = True
    fields = ("merchant", "permissions")
    verbose_name = "merchant membership"


if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class UserAdmin(AuditedAdminMixin, DjangoUserAdmin):
    inlines = (MerchantMembershipInline,)
    list_display = ("username", "email", "is_staff", "is_superuser", "is_active", "last_login")


def _split_list(value: str) -> list[str]:
    return [part.strip() for part in (value or "").replace("\n", ",").split(",") if part.strip()]


class APIKeyForm(forms.ModelForm):
    permissions = forms.MultipleChoiceField(
        choices=[(s, s) for s in (scopes.ALL, *scopes.SCOPES)],
        widget=forms.CheckboxSelectMultiple,
        help_text="'*' grants every permission.",
    )
    ip_whitelist = forms.CharField(required=False, help_text="CIDRs, comma separated. Empty: any address.")
    ip_blacklist = forms.CharField(required=False, help_text="CIDRs, comma separated.")

    class Meta:
        model = APIKey
        fields = (
            "merchant",
            "name",
            "description",
            "mode",
            "permissions",
            "rate_limit_per_minute",
            "rate_limit_per_hour",
            "rate_limit_per_day",
            "ip_whitelist",
            "ip_blacklist",
            "expires_at",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["ip_whitelist"] = ", ".join(self.instance.ip_whitelist or [])
            self.initial["ip_blacklist"] = ", ".join(self.instance.ip_blacklist or [])

    def _clean_cidrs(self, name: str) -> list[str]:
        normalized, invalid = normalize_cidrs(_split_list(self.cleaned_data.get(name, "")))
        if invalid:
            raise ValidationError(f"Not a valid address or CIDR: {', '.join(invalid)}")
        return normalized

    def clean_ip_whitelist(self):
        return self._clean_cidrs("ip_whitelist")

    def clean(self):
        cleaned = super().clean()
        assert cleaned is not None  # ModelForm.clean() returns cleaned_data
        merchant = cleaned.get("merchant")
        if self.instance.pk is None and merchant is not None:
            # A friendly form error; api_key_create enforces the cap itself, under the merchant's lock.
            cap = merchant_max_active_api_keys(merchant)
            active = merchant.api_keys.filter(status=APIKey.Status.ACTIVE).count()
            if active >= cap:
                raise ValidationError(
                    f"{merchant} already has {active} active API keys, its cap ({cap}). Revoke one, or raise "
                    "the merchant's 'max active API keys' on its page."
                )
        return cleaned

    def clean_ip_blacklist(self):
        return self._clean_cidrs("ip_blacklist")


@admin.register(APIKey)
class APIKeyAdmin(EasyPayModelAdmin):
    form = APIKeyForm
    list_display = (
        "key_id",
        "name_short",
        "merchant_short",
        "status_label",
        "mode_label",
        "last_used_at",
        "created_at",
    )
    list_filter = ("status", "mode")
    name_short = truncated_display("name", description="name", size="m")
    merchant_short = truncated_display("merchant__name", description="merchant", ordering="merchant__name")
    status_label = status_display()
    mode_label = status_display("mode")
    search_fields = ("=key_id", "name", "merchant__name")
    list_select_related = ("merchant",)
    raw_id_fields = ("merchant",)
    actions = ("revoke_keys",)
    # Never key_secret_hash: neither listed, nor in a form, nor read-only.
    readonly_fields = ("key_id", "status", "usage_count", "last_used_at", "revoked_at", "created_at", "updated_at")

    def get_readonly_fields(self, request, obj=None):
        fields = list(self.readonly_fields)
        if obj is not None:
            fields += ["merchant", "mode"]
            if obj.status == APIKey.Status.REVOKED:
                fields += [f for f in APIKeyForm.Meta.fields if f not in fields]
        return fields

    def get_fields(self, request, obj=None):
        fields = list(APIKeyForm.Meta.fields)
        if obj is not None:
            fields = ["key_id", "status", *fields, "usage_count", "last_used_at", "revoked_at", "created_at"]
        return fields

    def has_add_permission(self, request):
        return super().has_add_permission(request) and self.has_revoke_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False  # keys are revoked, never deleted (their audit history refers to them)

    def has_revoke_permission(self, request):
        return request.user.has_perm("audit.revoke_api_key")

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            created = api_key_create(
                merchant=data["merchant"],
                name=data["name"],
                description=data.get("description") or "",
                permissions=list(data["permissions"]),
                mode=data["mode"],
                rate_limit_per_minute=data["rate_limit_per_minute"],
                rate_limit_per_hour=data["rate_limit_per_hour"],
                rate_limit_per_day=data["rate_limit_per_day"],
                ip_whitelist=data["ip_whitelist"],
                ip_blacklist=data["ip_blacklist"],
                expires_at=data.get("expires_at"),
            )
            state = obj._state
            obj.__dict__.update({k: v for k, v in created.api_key.__dict__.items() if k != "_state"})
            state.adding, state.db = False, created.api_key._state.db
            obj._created_key = created.key
            return
        changes = {field: data[field] for field in form.changed_data if field in UPDATABLE_FIELDS}
        if changes:
            api_key_update(api_key=obj, **changes)

    def response_add(self, request, obj, post_url_continue=None):
        key = getattr(obj, "_created_key", None)
        if key is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "title": "API key created",
            "opts": self.model._meta,
            "api_key": obj,
            "key": key,
        }
        response = TemplateResponse(request, "admin/accounts/apikey/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke selected API keys", permissions=["revoke"])
    def revoke_keys(self, request, queryset):
        keys = list(queryset.select_related("merchant"))
        if request.POST.get("post") != "yes":
            rows = [
                {
                    "pk": k.pk,
                    "label": k.key_id,
                    "columns": [("Name", k.name), ("Merchant", k.merchant), ("Status", status_badge(k.status))],
                }
                for k in keys
            ]
            return confirmation_page(
                self,
                request,
                queryset,
                action="revoke_keys",
                title="Revoke API keys",
                rows=rows,
                note="Revoked keys (and JWTs minted from them) stop working at once. This cannot be undone.",
            )
        revoked = 0
        for key in keys:
            if key.status == APIKey.Status.ACTIVE:
                api_key_revoke(api_key=key)
                audit_admin_action(request, key, "revoke", data={"key_id": key.key_id})
                revoked += 1
        self.message_user(request, f"Revoked {revoked} API key(s).", messages.SUCCESS)
        return None


@admin.register(RevokedToken)
class RevokedTokenAdmin(ReadOnlyModelAdmin):
    list_display = ("jti_short", "kind", "merchant", "expires_at", "created_at")
    jti_short = truncated_display("jti", description="jti", ordering="jti", size="l")
    list_filter = ("kind",)
    search_fields = ("=jti",)
