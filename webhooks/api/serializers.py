"""Serializers of the webhooks API. Endpoint secrets appear only in the creation and rotation
responses (added by the views), never in these representations."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.serializers import StrictInputMixin

from ..catalogue import EVENT_TYPES
from ..models import DeliveryAttempt, Event, EventDelivery, WebhookEndpoint


def _iso(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


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
