"""Subscriptions on the wire (CONTRACT section 6): request parsing and the one response shape."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.fields import MetadataField, PhoneNumberField
from core.money import AmountField, parse_amount, validate_currency
from core.serializers import non_string_errors

from ..models import Subscription
from ..payloads import subscription_payload

UPDATABLE_FIELDS = (
    "amount",
    "plan_id",
    "metadata",
    "card_token",
    "customer_email",
    "customer_name",
    "customer_phone",
)


class PaymentMethodSerializer(serializers.Serializer):
    """What a merchant sees of the stored payment method: never a token or profile id."""

    type = serializers.CharField()
    card_last_four = serializers.CharField(allow_null=True)
    card_brand = serializers.CharField(allow_null=True)

    def to_representation(self, instance):
        instance = instance or {}
        return {
            "type": instance.get("type"),
            "card_last_four": instance.get("card_last_four"),
            "card_brand": instance.get("card_brand"),
        }


@extend_schema_field({"type": "string", "pattern": r"^\d+(\.\d+)?$", "example": "29.99"})
class _Amount(AmountField):
    """A decimal string with every minor digit of the currency ("29.90", JPY "1000")."""


class SubscriptionSerializer(serializers.ModelSerializer):
    amount = _Amount()
    # "" when none was given, so not documented as format "email".
    customer_email = serializers.CharField(read_only=True)
    payment_method = PaymentMethodSerializer(read_only=True)

    class Meta:
        model = Subscription
        fields = (
            "id",
            "external_id",
            "customer_id",
            "customer_email",
            "customer_name",
            "customer_phone",
            "plan_id",
            "status",
            "billing_cycle",
            "amount",
            "currency",
            "start_date",
            "next_billing_date",
            "current_period_start",
            "current_period_end",
            "payment_method",
            "metadata",
            "is_test",
            "failure_count",
            "cancelled_at",
            "paused_at",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


def subscription_data(subscription: Subscription) -> dict:
    """The subscription exactly as the API returns it (also the ``data`` of its events): its payload."""
    return subscription_payload(subscription)


@extend_schema_field({"type": "object", "additionalProperties": True})
@extend_schema_field({"type": "string", "pattern": r"^\d+(\.\d+)?$", "example": "29.99"})
class _AmountInput(serializers.JSONField):
    """Taken raw so a JSON number or null is refused by ``parse_amount`` with the contract's message."""


@extend_schema_field({"type": "string", "pattern": "^[A-Z]{3}$", "example": "USD"})
class _CurrencyInput(serializers.JSONField):
    """Taken raw and checked by ``validate_currency``."""


class _StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know instead of ignoring them silently."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["The request body must be a JSON object."]})
        unknown = sorted(set(data) - set(self.fields))
        errors = {}
        wrong_type = non_string_errors(self.fields, data)
        if wrong_type:
            raise serializers.ValidationError(wrong_type)
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            errors.update(exc.detail)
            value = None
        for name in unknown:
            errors[name] = [self.unknown_field_message]
        if errors:
            raise serializers.ValidationError(errors)
        return value

    unknown_field_message = "Unknown field."


class SubscriptionCreateSerializer(_StrictSerializer):
    customer_id = serializers.CharField(max_length=255)
    plan_id = serializers.CharField(max_length=255)
    amount = _AmountInput()
    currency = _CurrencyInput()
    billing_cycle = serializers.ChoiceField(choices=Subscription.Cycle.choices)
    card_token = serializers.CharField(max_length=4096, trim_whitespace=False)
    start_date = serializers.DateField(required=False)
    metadata = MetadataField(required=False)
    customer_email = serializers.EmailField(required=False, allow_blank=True, max_length=254)
    customer_name = serializers.CharField(required=False, allow_blank=True, max_length=255)
    customer_phone = PhoneNumberField(required=False)
    external_id = serializers.RegexField(r"^[A-Za-z0-9_.:\-]{1,255}$", required=False, max_length=255)
    is_test = serializers.BooleanField(required=False)

    def validate(self, attrs):
        errors: dict[str, list[str]] = {}
        currency = None
        try:
            currency = validate_currency(attrs.get("currency"))
            attrs["currency"] = currency
        except serializers.ValidationError as exc:
            errors["currency"] = list(exc.detail)
        try:
            attrs["amount"] = parse_amount(attrs.get("amount"), currency)
        except serializers.ValidationError as exc:
            errors["amount"] = list(exc.detail)
        start = attrs.get("start_date")
        today = self.context["today"]
        if start is not None and start < today:
            errors["start_date"] = [f"Must be today ({today.isoformat()}, UTC) or later."]
        is_test = self.context["is_test"]
        if "is_test" in attrs and attrs["is_test"] != is_test:
            errors["is_test"] = [f"This API key is in {'test' if is_test else 'live'} mode."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class SubscriptionUpdateSerializer(_StrictSerializer):
    amount = _AmountInput(required=False)
    plan_id = serializers.CharField(required=False, max_length=255)
    metadata = MetadataField(required=False)
    card_token = serializers.CharField(required=False, max_length=4096, trim_whitespace=False)
    customer_email = serializers.EmailField(required=False, allow_blank=True, max_length=254)
    customer_name = serializers.CharField(required=False, allow_blank=True, max_length=255)
    customer_phone = PhoneNumberField(required=False)

    unknown_field_message = f"This field cannot be changed. Updatable fields: {', '.join(UPDATABLE_FIELDS)}."

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError(
                {"non_field_errors": [f"Give at least one of: {', '.join(UPDATABLE_FIELDS)}."]}
            )
        if "amount" in attrs:
            try:
                attrs["amount"] = parse_amount(attrs["amount"], self.context["currency"])
            except serializers.ValidationError as exc:
                raise serializers.ValidationError({"amount": list(exc.detail)}) from None
        return attrs
