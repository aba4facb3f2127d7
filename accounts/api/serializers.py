"""Input and output shapes of /api/v1/auth/ (CONTRACT section 3). Inputs are strict: an unknown or
read-only field is a 400 naming it, never silently ignored."""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings
from django.utils import timezone
from rest_framework import serializers

from accounts import scopes
from accounts.ipfilter import normalize_cidrs
from accounts.models import APIKey
from core.serializers import non_string_errors

MAX_RATE_LIMIT = 10_000_000


class StrictSerializer(serializers.Serializer):
    """Rejects fields it does not accept (typos, read-only fields like ``status``) with field details."""

    def to_internal_value(self, data):
        errors: dict = non_string_errors(self.fields, data) if isinstance(data, dict) else {}
        if isinstance(data, Mapping):
            for name in data:
                field = self.fields.get(name)
                if field is None:
                    errors[name] = ["Unknown field."]
                elif field.read_only:
                    errors[name] = ["This field cannot be set."]
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if not isinstance(exc.detail, Mapping):
                raise
            errors = {**exc.detail, **errors}
            value = None
        if errors:
            raise serializers.ValidationError(errors)
        return value


def validate_permission_list(value: list[str]) -> list[str]:
    unknown = [p for p in value if p not in scopes.VALID]
    if unknown:
        raise serializers.ValidationError(
            f"Unknown permissions: {', '.join(unknown)}. Valid: *, {', '.join(scopes.SCOPES)}."
        )
    return list(dict.fromkeys(value))


def _cidr_list(value):
    if value is None:
        return []
    normalized, invalid = normalize_cidrs(value)
    if invalid:
        raise serializers.ValidationError([f"'{v}' is not a valid IP address or CIDR." for v in invalid])
    return normalized


def _within_ceiling(value: int, window: str) -> int:
    ceiling = settings.API_KEY_MAX_RATE_LIMITS[window]
    if value > ceiling:
        raise serializers.ValidationError(f"At most {ceiling} requests per {window} (this server's ceiling).")
    return value


class _APIKeyInput(StrictSerializer):
    name = serializers.CharField(max_length=100, trim_whitespace=True)
    description = serializers.CharField(max_length=1000, allow_blank=True, allow_null=True, required=False)
    permissions = serializers.ListField(child=serializers.CharField(max_length=64), allow_empty=False, max_length=20)
    rate_limit_per_minute = serializers.IntegerField(min_value=1, max_value=MAX_RATE_LIMIT, required=False)
    rate_limit_per_hour = serializers.IntegerField(min_value=1, max_value=MAX_RATE_LIMIT, required=False)
    rate_limit_per_day = serializers.IntegerField(min_value=1, max_value=MAX_RATE_LIMIT, required=False)
    ip_whitelist = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, allow_null=True, max_length=100
    )
    ip_blacklist = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, allow_null=True, max_length=100
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True)

    def validate_permissions(self, value):
        return validate_permission_list(value)

    def validate_description(self, value):
        return value or ""

    # A key's limits protect the platform, so a merchant cannot lift them past the operator's ceiling by
    # minting a key (``API_KEY_MAX_RATE_LIMITS``; the create_api_key command is the operator's own way).
    def validate_rate_limit_per_minute(self, value):
        return _within_ceiling(value, "minute")

    def validate_rate_limit_per_hour(self, value):
        return _within_ceiling(value, "hour")

    def validate_rate_limit_per_day(self, value):
        return _within_ceiling(value, "day")

    def validate_ip_whitelist(self, value):
        return _cidr_list(value)

    def validate_ip_blacklist(self, value):
        return _cidr_list(value)

    def validate_expires_at(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("Must be in the future.")
        return value


class APIKeyCreateSerializer(_APIKeyInput):
    """``permissions`` defaults to the creating credential's, ``mode`` to its mode."""

    permissions = serializers.ListField(
        child=serializers.CharField(max_length=64), allow_empty=False, max_length=20, required=False
    )
    mode = serializers.ChoiceField(choices=APIKey.Mode.choices, required=False)


class APIKeyUpdateSerializer(_APIKeyInput):
    """PUT and PATCH both change only the fields sent. ``status`` is changed by DELETE only."""

    def __init__(self, *args, **kwargs):
        kwargs["partial"] = True
        super().__init__(*args, **kwargs)


class APIKeySerializer(serializers.ModelSerializer):
    """A key as GET/list/PUT answer it: never the secret (only its hash is stored anyway)."""

    merchant_id = serializers.UUIDField(read_only=True)
    is_expired = serializers.SerializerMethodField()

    class Meta:
        model = APIKey
        fields: tuple[str, ...] = (
            "id",
            "key_id",
            "name",
            "description",
            "merchant_id",
            "permissions",
            "mode",
            "status",
            "rate_limit_per_minute",
            "rate_limit_per_hour",
            "rate_limit_per_day",
            "ip_whitelist",
            "ip_blacklist",
            "expires_at",
            "is_expired",
            "last_used_at",
            "usage_count",
            "revoked_at",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields

    def get_is_expired(self, obj: APIKey) -> bool:
        return bool(obj.expires_at and obj.expires_at <= timezone.now())


class APIKeyCreatedSerializer(APIKeySerializer):
    """Only the creation response carries ``key_secret`` and ``key`` (``<key_id>.<key_secret>``)."""

    key_secret = serializers.CharField(read_only=True)
    key = serializers.CharField(read_only=True)

    class Meta(APIKeySerializer.Meta):
        fields = (*APIKeySerializer.Meta.fields, "key_secret", "key")
        read_only_fields = fields


# --- tokens ----------------------------------------------------------------------------------------


class TokenObtainSerializer(StrictSerializer):
    key_id = serializers.CharField(required=False, max_length=64)
    key_secret = serializers.CharField(required=False, max_length=256, trim_whitespace=False)
    username = serializers.CharField(required=False, max_length=150)
    password = serializers.CharField(required=False, max_length=256, trim_whitespace=False)
    mode = serializers.ChoiceField(choices=APIKey.Mode.choices, required=False, help_text="user logins only")

    def validate(self, attrs):
        has_key = "key_id" in attrs or "key_secret" in attrs
        has_user = "username" in attrs or "password" in attrs
        if has_key == has_user:
            raise serializers.ValidationError(
                {"non_field_errors": ["Send either key_id and key_secret, or username and password."]}
            )
        pair = ("key_id", "key_secret") if has_key else ("username", "password")
        missing = {name: ["This field is required."] for name in pair if name not in attrs}
        if missing:
            raise serializers.ValidationError(missing)
        if has_key and "mode" in attrs:
            raise serializers.ValidationError({"mode": ["An API key token always has the key's mode."]})
        return attrs


class TokenPairSerializer(serializers.Serializer):
    access_token = serializers.CharField()
    refresh_token = serializers.CharField()
    token_type = serializers.CharField(default="Bearer")
    expires_in = serializers.IntegerField(help_text="access token lifetime in seconds")
    refresh_expires_in = serializers.IntegerField()


class RefreshRequestSerializer(StrictSerializer):
    refresh_token = serializers.CharField(max_length=4096)


class TokenRequestSerializer(StrictSerializer):
    token = serializers.CharField(max_length=4096)


class TokenValidationSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    reason = serializers.CharField(required=False, help_text="expired, revoked, invalid or credential_inactive")
    token_type = serializers.CharField(required=False)
    jti = serializers.CharField(required=False)
    credential = serializers.CharField(required=False, help_text="api_key or user")
    merchant_id = serializers.CharField(required=False)
    key_id = serializers.CharField(required=False, allow_null=True)
    user_id = serializers.IntegerField(required=False, allow_null=True)
    username = serializers.CharField(required=False, allow_null=True)
    permissions = serializers.ListField(child=serializers.CharField(), required=False)
    mode = serializers.CharField(required=False)
    issued_at = serializers.DateTimeField(required=False, allow_null=True)
    expires_at = serializers.DateTimeField(required=False)
    expires_in = serializers.IntegerField(required=False)


class TokenRevocationSerializer(serializers.Serializer):
    revoked = serializers.BooleanField()
    token_type = serializers.CharField(required=False)
    jti = serializers.CharField(required=False)
    already_expired = serializers.BooleanField(required=False)


# --- permissions, me, cleanup ---------------------------------------------------------------------


class PermissionCheckSerializer(StrictSerializer):
    permissions = serializers.ListField(child=serializers.CharField(max_length=64), allow_empty=False, max_length=50)

    def validate_permissions(self, value):
        return validate_permission_list(value)


class PermissionCheckResultSerializer(serializers.Serializer):
    granted = serializers.ListField(child=serializers.CharField())
    denied = serializers.ListField(child=serializers.CharField())
    results = serializers.DictField(child=serializers.BooleanField())
    all_granted = serializers.BooleanField()


class RateLimitsSerializer(serializers.Serializer):
    minute = serializers.IntegerField()
    hour = serializers.IntegerField()
    day = serializers.IntegerField()


class MeSerializer(serializers.Serializer):
    merchant_id = serializers.CharField()
    merchant_name = serializers.CharField()
    merchant_status = serializers.CharField()
    credential_type = serializers.CharField(help_text="api_key or jwt")
    token_subject = serializers.CharField(allow_null=True, help_text="for jwt: api_key or user")
    api_key_id = serializers.CharField(allow_null=True)
    key_id = serializers.CharField(allow_null=True)
    user_id = serializers.IntegerField(allow_null=True)
    username = serializers.CharField(allow_null=True)
    permissions = serializers.ListField(child=serializers.CharField())
    effective_permissions = serializers.ListField(child=serializers.CharField())
    mode = serializers.CharField()
    is_test = serializers.BooleanField()
    rate_limits = RateLimitsSerializer()


class CleanupResultSerializer(serializers.Serializer):
    outstanding_tokens_deleted = serializers.IntegerField()
    blacklisted_tokens_deleted = serializers.IntegerField()
    revoked_tokens_deleted = serializers.IntegerField()
    api_keys_expired = serializers.IntegerField()
