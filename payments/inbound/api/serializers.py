"""Serializers of the Authorize.Net inbound API: the stored notification, the callback's receipt and
the test endpoint's request and answer."""

from __future__ import annotations

from rest_framework import serializers

from core.serializers import StrictInputMixin
from webhooks.models import InboundEvent

from ..services import ANET_EVENT_TYPES


class InboundEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = InboundEvent
        fields = (
            "id",
            "event_id",
            "event_type",
            "source",
            "status",
            "signature_valid",
            "retry_count",
            "error_message",
            "next_attempt_at",
            "processed_at",
            "payload",
            "metadata",
            "created_at",
            "updated_at",
        )


class InboundReceiptSerializer(serializers.Serializer):
    received = serializers.BooleanField()
    id = serializers.UUIDField()
    duplicate = serializers.BooleanField()


class InboundTestRequestSerializer(StrictInputMixin, serializers.Serializer):
    event_type = serializers.ChoiceField(
        choices=[t for t in ANET_EVENT_TYPES if t.startswith("net.authorize.payment.")],
        default="net.authorize.payment.authcapture.created",
        required=False,
    )
    transaction_id = serializers.RegexField(r"^[0-9]{1,20}$", required=False, help_text="Authorize.Net transId.")
    payment_id = serializers.UUIDField(required=False, help_text="One of your payments: uses its transaction id.")


class InboundTestResponseSerializer(serializers.Serializer):
    received = serializers.BooleanField()
    id = serializers.UUIDField()
    duplicate = serializers.BooleanField()
    notification = serializers.JSONField()
    event = InboundEventSerializer()


class AnetEventTypesSerializer(serializers.Serializer):
    event_types = serializers.ListField(child=serializers.CharField())
    handled = serializers.ListField(child=serializers.CharField())
