"""Payment request parsing and the payment object as the API (and every payment event) shows it."""

from __future__ import annotations

import json
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.fields import MetadataField, PhoneNumberField, StrictBooleanField
from core.money import AmountField, parse_amount, supported_currencies, validate_currency
from core.serializers import SerializerMixinBase, non_string_errors
from payments.models import Payment, Refund
from payments.payloads import PAYMENT_FIELDS

MAX_METADATA_BYTES = 16 * 1024
AMOUNT_SCHEMA = {"type": "string", "pattern": r"^\d+(\.\d+)?$", "example": "25.99"}


@extend_schema_field(AMOUNT_SCHEMA)
class MoneyField(AmountField):
    """An amount rendered with every minor digit of the object's currency ("25.90", JPY "1000")."""


@extend_schema_field(AMOUNT_SCHEMA)
class RawAmountField(serializers.Field):
    """Keeps the raw JSON value; the serializer parses it once it knows the currency."""

    def to_internal_value(self, data):
        return data

    def to_representation(self, value):
        return value


def _check_metadata(value: dict[str, Any]) -> None:
    if len(json.dumps(value, default=str)) > MAX_METADATA_BYTES:
        raise serializers.ValidationError(f"At most {MAX_METADATA_BYTES} bytes of JSON.")


class StrictInputSerializer(serializers.Serializer):
    """Refuses fields it does not declare, naming each (a typo is an error, not silently ignored)."""

    unknown_field_message = "Unknown field."

    def to_internal_value(self, data):
        if isinstance(data, dict):
            errors = non_string_errors(self.fields, data)
            errors.update({name: [self.unknown_field_message] for name in sorted(set(data) - set(self.fields))})
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


# --- output -------------------------------------------------------------------------------------


class RefundSerializer(serializers.ModelSerializer):
    id = serializers.CharField(read_only=True)
    amount = MoneyField(read_only=True)

    class Meta:
        model = Refund
        fields = ("id", "amount", "status", "reason", "processor_transaction_id", "created_at")
        read_only_fields = fields


class PaymentSerializer(serializers.ModelSerializer):
    id = serializers.CharField(read_only=True)
    amount = MoneyField(read_only=True)
    authorized_amount = MoneyField(read_only=True, allow_null=True)
    captured_amount = MoneyField(read_only=True)
    refunded_amount = MoneyField(read_only=True)
    refunds = RefundSerializer(many=True, read_only=True)
    subscription_id = serializers.UUIDField(read_only=True, allow_null=True)
    metadata = serializers.DictField(read_only=True)
    # "" when the merchant gave none: documented as a plain string, not format "email".
    customer_email = serializers.CharField(read_only=True)

    class Meta:
        model = Payment
        fields = PAYMENT_FIELDS  # the keys payment_payload writes, in its order
        read_only_fields = fields


# --- input --------------------------------------------------------------------------------------


class PaymentCreateSerializer(StrictInputSerializer):
    amount = RawAmountField(help_text='Decimal string with at most the currency\'s minor digits, e.g. "25.99".')
    currency = serializers.CharField(
        trim_whitespace=False, help_text="ISO 4217, upper case, one of the supported currencies."
    )
    payment_method = serializers.ChoiceField(choices=["credit_card"], default="credit_card", required=False)
    customer_id = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    customer_email = serializers.EmailField(max_length=255, required=False, allow_blank=True, default="")
    customer_name = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    customer_phone = PhoneNumberField(required=False, default="")
    card_token = serializers.CharField(
        max_length=4096, help_text="A test token (tok_visa_4242, ...) in test mode; an Accept.js nonce in live mode."
    )
    description = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")
    metadata = MetadataField(required=False, default=dict, validators=[_check_metadata])
    is_test = StrictBooleanField(required=False, help_text="Must match the API key's mode when given.")
    capture = StrictBooleanField(
        required=False, default=True, help_text="true: authorize and capture (purchase); false: authorize only."
    )
    external_id = serializers.CharField(
        max_length=255, required=False, help_text="Unique per merchant; generated as pay_... when absent."
    )

    def validate_currency(self, value: str) -> str:
        return validate_currency(value)

    def validate_amount(self, value: Any):
        currency = self.initial_data.get("currency") if isinstance(self.initial_data, dict) else None
        known = currency if isinstance(currency, str) and currency in supported_currencies() else None
        return parse_amount(value, known)

    def validate_is_test(self, value: bool) -> bool:
        mode_is_test = self.context.get("mode_is_test")
        if mode_is_test is not None and value != mode_is_test:
            mode = "test" if mode_is_test else "live"
            raise serializers.ValidationError(
                f"This API key is in {mode} mode; is_test must be {str(mode_is_test).lower()}."
            )
        return value


class PaymentUpdateSerializer(StrictInputSerializer):
    """PUT and PATCH change only these four fields; any other field is refused, by name."""

    unknown_field_message = (
        "This field cannot be changed; only description, metadata, customer_email and customer_name can."
    )

    description = serializers.CharField(max_length=1000, required=False, allow_blank=True)
    metadata = MetadataField(required=False, validators=[_check_metadata])
    customer_email = serializers.EmailField(max_length=255, required=False, allow_blank=True)
    customer_name = serializers.CharField(max_length=255, required=False, allow_blank=True)


class CurrencyAmountMixin(SerializerMixinBase):
    """Optional ``amount`` parsed with the payment's currency (passed as context ``currency``)."""

    def validate_amount(self, value: Any):
        return parse_amount(value, self.context.get("currency"))


class PaymentCaptureSerializer(CurrencyAmountMixin, StrictInputSerializer):
    amount = RawAmountField(required=False, help_text="At most the authorized amount; default: all of it.")


class RefundCreateSerializer(CurrencyAmountMixin, StrictInputSerializer):
    amount = RawAmountField(required=False, help_text="Default: everything not yet refunded.")
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class PaymentCancelSerializer(StrictInputSerializer):
    """``cancel`` takes no fields."""
