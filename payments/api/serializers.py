"""Payment request parsing and the payment object as the API (and every payment event) shows it."""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.fields import MetadataField, PhoneNumberField, StrictBooleanField
from core.money import AmountField, format_amount, parse_amount, supported_currencies, validate_currency
from core.serializers import SerializerMixinBase, non_string_errors
from payments.models import Payment, Refund

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
        fields = (
            "id",
            "external_id",
            "amount",
            "currency",
            "status",
            "payment_method",
            "customer_id",
            "customer_email",
            "customer_name",
            "customer_phone",
            "card_last_four",
            "card_brand",
            "description",
            "metadata",
            "processor_response_code",
            "processor_response_message",
            "processor_transaction_id",
            "authorized_amount",
            "captured_amount",
            "refunded_amount",
            "refund_count",
            "refunds",
            "subscription_id",
            "created_at",
            "updated_at",
            "processed_at",
            "settled_at",
            "is_test",
        )
        read_only_fields = fields


# The payment as the API shows it, built as plain data: what ``PaymentSerializer(payment).data`` gives
# (the serializer stays the schema's definition and the test's oracle, payments/tests/
# test_payments_serialization.py), at a fraction of the cost: DRF runs get_attribute and
# to_representation per field and per row (~0.05 ms a payment, with ~0.8 ms to build the serializer).
_TEXT_FIELDS = (
    "currency",
    "status",
    "payment_method",
    "customer_id",
    "customer_email",
    "customer_name",
    "customer_phone",
    "card_last_four",
    "card_brand",
    "description",
)
_PROCESSOR_FIELDS = ("processor_response_code", "processor_response_message", "processor_transaction_id")


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _instant(value: Any, zone: Any = None) -> str | None:
    """A datetime as DRF's ``DateTimeField`` writes it under ``DATETIME_FORMAT = "iso-8601"``;
    ``zone``: the current time zone when the caller has looked it up already (once per payload: the
    lookup goes through asgiref's Local, 4 a payment made it 10 % of a list page's CPU)."""
    if not value:
        return None
    if timezone.is_aware(value):
        value = value.astimezone(zone or timezone.get_current_timezone())
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _amount(value: Decimal | None, currency: str) -> str | None:
    return None if value is None else format_amount(value, currency)


def refund_payload(refund: Refund, *, currency: str) -> dict[str, Any]:
    """One refund as the API shows it inside its payment (``currency``: the payment's)."""
    return {
        "id": str(refund.pk),
        "amount": _amount(refund.amount, currency or "USD"),
        "status": _text(refund.status),
        "reason": _text(refund.reason),
        "processor_transaction_id": _text(refund.processor_transaction_id),
        "created_at": _instant(refund.created_at),
    }


def payment_payload(payment: Payment, *, refunds: Iterable[Refund] | None = None) -> dict[str, Any]:
    """The payment as the API returns it (``PaymentSerializer``'s output, key order included).

    ``refunds``: the payment's refunds when the caller knows them (e.g. none for a payment it
    created a moment ago under its lock); by default ``payment.refunds.all()`` (its prefetch when
    there is one, else one query).
    """
    currency = payment.currency or "USD"
    data: dict[str, Any] = {
        "id": str(payment.pk),
        "external_id": _text(payment.external_id),
        "amount": _amount(payment.amount, currency),
    }
    for name in _TEXT_FIELDS:
        data[name] = _text(getattr(payment, name))
    metadata = payment.metadata
    data["metadata"] = None if metadata is None else {str(key): value for key, value in metadata.items()}
    for name in _PROCESSOR_FIELDS:
        data[name] = _text(getattr(payment, name))
    data["authorized_amount"] = _amount(payment.authorized_amount, currency)
    data["captured_amount"] = _amount(payment.captured_amount, currency)
    data["refunded_amount"] = _amount(payment.refunded_amount, currency)
    data["refund_count"] = None if payment.refund_count is None else int(payment.refund_count)
    rows = payment.refunds.all() if refunds is None else refunds
    data["refunds"] = [refund_payload(refund, currency=currency) for refund in rows]
    data["subscription_id"] = _text(payment.subscription_id)
    zone = timezone.get_current_timezone()
    data["created_at"] = _instant(payment.created_at, zone)
    data["updated_at"] = _instant(payment.updated_at, zone)
    data["processed_at"] = _instant(payment.processed_at, zone)
    data["settled_at"] = _instant(payment.settled_at, zone)
    data["is_test"] = None if payment.is_test is None else bool(payment.is_test)
    return data


def payment_data(payment: Payment, *, refunds: Iterable[Refund] | None = None) -> dict[str, Any]:
    """The payment exactly as the API returns it, as plain JSON-ready data (webhook events use it):
    a copy that shares nothing with the payment (its metadata included)."""
    return json.loads(json.dumps(payment_payload(payment, refunds=refunds)))


def payments_data(payments: Iterable[Payment]) -> list[dict[str, Any]]:
    """A page of payments as ``PaymentSerializer(payments, many=True).data`` gives them, the page's
    refunds read in one query, from the database the page came from (a replica or the primary)."""
    payments = list(payments)
    if not payments:
        return []
    refunds: dict[Any, list[Refund]] = {payment.pk: [] for payment in payments}
    for refund in Refund.objects.using(payments[0]._state.db).filter(payment_id__in=list(refunds)):
        refunds[refund.payment_id].append(refund)  # in Refund's ordering, as payment.refunds.all()
    return [payment_payload(payment, refunds=refunds[payment.pk]) for payment in payments]


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
