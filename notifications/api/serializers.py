"""The notification settings and the notification log as the API shows them."""

from __future__ import annotations

from zoneinfo import available_timezones

from rest_framework import serializers

from core.fields import StrictBooleanField
from core.serializers import StrictInputMixin

from ..models import Notification, NotificationSettings


class NotificationSettingsSerializer(serializers.ModelSerializer):
    # "" when unset, so documented as plain strings, not format "email".
    reply_to = serializers.CharField(read_only=True)
    support_email = serializers.CharField(read_only=True)
    alert_email = serializers.CharField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True, help_text="null until first changed")

    class Meta:
        model = NotificationSettings
        fields = (
            "payment_receipt",
            "refund_receipt",
            "payment_failed",
            "subscription_cancelled",
            "renewal_reminder",
            "renewal_reminder_days",
            "card_expiring",
            "webhook_endpoint_failing",
            "sms_enabled",
            "sender_name",
            "reply_to",
            "support_email",
            "alert_email",
            "timezone",
            "updated_at",
        )
        read_only_fields = fields


class NotificationSettingsUpdateSerializer(StrictInputMixin, serializers.Serializer):
    """``PUT`` takes any subset of the settings; fields not given keep their value."""

    payment_receipt = StrictBooleanField(required=False, help_text="Receipt for a captured payment (default on).")
    refund_receipt = StrictBooleanField(required=False, help_text="Receipt for each refund (default on).")
    payment_failed = StrictBooleanField(required=False, help_text="A subscription charge failed; says the retry date.")
    subscription_cancelled = StrictBooleanField(required=False, help_text="Cancelled after the retries ran out.")
    renewal_reminder = StrictBooleanField(required=False, help_text="Reminder before a renewal (default off).")
    renewal_reminder_days = serializers.IntegerField(required=False, min_value=1, max_value=30)
    card_expiring = StrictBooleanField(required=False, help_text="The stored card of an active subscription expires.")
    webhook_endpoint_failing = StrictBooleanField(
        required=False, help_text="To the merchant: an endpoint's deliveries have failed for a day."
    )
    sms_enabled = StrictBooleanField(required=False, help_text="Also text customers with a customer_phone.")
    sender_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    reply_to = serializers.EmailField(required=False, allow_blank=True, max_length=254)
    support_email = serializers.EmailField(required=False, allow_blank=True, max_length=254)
    alert_email = serializers.EmailField(required=False, allow_blank=True, max_length=254)
    timezone = serializers.CharField(required=False, allow_blank=True, max_length=64, help_text="IANA, e.g. Asia/Tokyo")

    def validate_sender_name(self, value: str) -> str:
        if any(ch in value for ch in '\r\n<>"@'):
            raise serializers.ValidationError("Must not contain line breaks, quotes, @, < or >.")
        return value.strip()

    def validate_timezone(self, value: str) -> str:
        if value and value not in available_timezones():
            raise serializers.ValidationError("Must be an IANA time zone name such as Europe/Paris, or blank.")
        return value


class NotificationSerializer(serializers.ModelSerializer):
    resent_from = serializers.CharField(source="resent_from_id", read_only=True, allow_null=True)

    class Meta:
        model = Notification
        fields = (
            "id",
            "kind",
            "channel",
            "recipient",
            "status",
            "object_type",
            "object_id",
            "event_id",
            "subject",
            "attempt_count",
            "last_error",
            "next_attempt_at",
            "sent_at",
            "resent_from",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields
