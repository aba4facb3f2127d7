"""DRF fields shared by the apps' serializers."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


@extend_schema_field({"type": "string", "pattern": r"^(\+[1-9]\d{1,14})?$", "example": "+14155552671"})  # "" clears it
class PhoneNumberField(serializers.CharField):
    """A phone number in E.164 (``+14155552671``), checked with ``phonenumbers``; blank allowed."""

    default_error_messages = {"invalid_phone": "Must be a valid phone number in E.164 format, e.g. +14155552671."}

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 16)
        kwargs.setdefault("allow_blank", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        import phonenumbers

        value = super().to_internal_value(data)
        if not value:
            return ""
        if not value.startswith("+"):
            self.fail("invalid_phone")
        try:
            number = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException:
            self.fail("invalid_phone")
        if not phonenumbers.is_valid_number(number):
            self.fail("invalid_phone")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@extend_schema_field(
    {
        "type": "object",
        "maxProperties": 50,
        "additionalProperties": {
            "nullable": True,
            "oneOf": [{"type": "string", "maxLength": 500}, {"type": "number"}, {"type": "boolean"}],
        },
        "example": {"order_id": "order_2024_001"},
    }
)
class MetadataField(serializers.JSONField):
    """A flat JSON object of string keys, at most 50 keys; values are strings, numbers, booleans or null."""

    MAX_KEYS = 50

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if not isinstance(data, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        if len(data) > self.MAX_KEYS:
            raise serializers.ValidationError(f"At most {self.MAX_KEYS} keys.")
        for key, value in data.items():
            if len(key) > 40:
                raise serializers.ValidationError(f"Key {key[:40]!r}... is longer than 40 characters.")
            if isinstance(value, (dict, list)):
                raise serializers.ValidationError(f"Value of {key!r} must be a string, number, boolean or null.")
            if isinstance(value, str) and len(value) > 500:
                raise serializers.ValidationError(f"Value of {key!r} is longer than 500 characters.")
        return data


class StrictBooleanField(serializers.BooleanField):
    """Only JSON ``true``/``false``: no "yes", 1 or "false"-strings guessed into booleans."""

    default_error_messages = {"invalid": "Must be a JSON boolean (true or false)."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data
