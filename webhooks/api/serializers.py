"""Serializers of the webhooks API. Endpoint secrets appear only in the creation and rotation
responses (added by the views), never in these representations."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..models import DeliveryAttempt, Event, EventDelivery, InboundEvent, WebhookEndpoint
from ..services import ANET_EVENT_TYPES, EVENT_TYPES


def _iso(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


class StrictInputMixin:
    """Unknown fields are a 400, not silently dropped (read-only fields echoed back are ignored)."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class WebhookEndpointSerializer(StrictInputMixin, serializers.ModelSerializer):
    url = serializers.CharField(max_length=2048, help_text="http(s) URL that receives the events.")
    events = serializers.ListField(
        child=serializers.CharField(max_length=64),
        allow_empty=False,
        max_length=len(EVENT_TYPES) + 1,
        help_text='Event types to send, or ["*"] for all of them.',
    )
    description = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    is_active = serializers.BooleanField(required=False, default=True)

    class Meta:
        model = WebhookEndpoint
        fields = (
            "id",
            "url",
            "events",
            "description",
            "is_active",
            "secret_rotated_at",
            "previous_secret_expires_at",
            "created_at",
            "updated_at",
        )
        read_only_fields = ("id", "secret_rotated_at", "previous_secret_expires_at", "created_at", "updated_at")

    def validate_events(self, value):
        unknown = [e for e in value if e != "*" and e not in EVENT_TYPES]
        if unknown:
            raise serializers.ValidationError([f"Unknown event type: {e!r}." for e in unknown])
        return value


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    """The creation and rotation responses: the endpoint plus its (new) ``secret``, shown this once."""

    secret = serializers.CharField(read_only=True, help_text="whsec_... signing secret; shown only now.")

    class Meta(WebhookEndpointSerializer.Meta):
        fields = (*WebhookEndpointSerializer.Meta.fields, "secret")


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = (
            "attempt_number",
            "url",
            "status_code",
            "latency_ms",
            "response_body",
            "error",
            "succeeded",
            "created_at",
        )


class EventDeliverySerializer(serializers.ModelSerializer):
    event_id = serializers.CharField(read_only=True)
    event_type = serializers.CharField(source="event.type", read_only=True)
    endpoint_id = serializers.UUIDField(read_only=True)
    attempts = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = EventDelivery
        fields = (
            "id",
            "event_id",
            "event_type",
            "endpoint_id",
            "status",
            "attempt_count",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "completed_at",
            "created_at",
            "updated_at",
            "attempts",
        )


class EventDeliverySummarySerializer(serializers.ModelSerializer):
    endpoint_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = EventDelivery
        fields = ("id", "endpoint_id", "status", "attempt_count", "next_attempt_at", "last_status_code", "last_error")


class EventSerializer(serializers.ModelSerializer):
    """An event as it is POSTed (``id``, ``type``, ``created``, ``sequence``, ``data``) plus its delivery state."""

    created = serializers.SerializerMethodField()
    delivery_status = serializers.SerializerMethodField()
    deliveries = EventDeliverySummarySerializer(many=True, read_only=True)

    class Meta:
        model = Event
        fields = ("id", "type", "created", "sequence", "data", "delivery_status", "deliveries", "created_at")

    @extend_schema_field(serializers.DateTimeField())
    def get_created(self, obj) -> str:
        return _iso(obj.created_at)

    @extend_schema_field(serializers.ChoiceField(choices=["pending", "succeeded", "failed"], allow_null=True))
    def get_delivery_status(self, obj) -> str | None:
        statuses = {d.status for d in obj.deliveries.all()}
        if EventDelivery.Status.FAILED in statuses:
            return "failed"
        if EventDelivery.Status.PENDING in statuses:
            return "pending"
        if EventDelivery.Status.SUCCEEDED in statuses:
            return "succeeded"
        return None


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
