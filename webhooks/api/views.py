"""HTTP layer of webhooks: merchant endpoints and events (outbound). Views parse input and call
services; nothing here decides business state. The Authorize.Net callback (inbound) is
``payments.inbound.api.views``."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.settings import api_settings

from core.exceptions import NotFound, ValidationFailed
from core.idempotency import OPENAPI_PARAMETER, idempotent
from core.replicas import replica_queryset

from .. import selectors, services
from ..models import Event, EventDelivery, WebhookEndpoint
from .filters import DeliveryFilter, EventFilter
from .serializers import (
    EventDeliverySerializer,
    EventSerializer,
    WebhookEndpointSerializer,
    WebhookEndpointWithSecretSerializer,
)

UUID_RE = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


# --- Outbound: endpoints --------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List webhook endpoints", tags=["webhooks"]),
    retrieve=extend_schema(summary="Get a webhook endpoint", tags=["webhooks"]),
    create=extend_schema(
        summary="Create a webhook endpoint (the response holds its secret, shown only this once)",
        tags=["webhooks"],
        request=WebhookEndpointSerializer,
        parameters=[OPENAPI_PARAMETER],
        responses={201: WebhookEndpointWithSecretSerializer},
    ),
    update=extend_schema(summary="Replace a webhook endpoint", tags=["webhooks"]),
    partial_update=extend_schema(summary="Change a webhook endpoint", tags=["webhooks"]),
    destroy=extend_schema(summary="Delete a webhook endpoint (no further deliveries)", tags=["webhooks"]),
)
class WebhookEndpointViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = WebhookEndpointSerializer
    read_scope = "webhooks:read"
    write_scope = "webhooks:write"
    lookup_value_regex = UUID_RE
    filter_backends = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no caller
            return WebhookEndpoint.objects.none()
        return selectors.endpoint_list(merchant_id=self.request.user.merchant_id)

    def perform_create(self, serializer):  # pragma: no cover - create() is overridden
        raise NotImplementedError

    @idempotent(secret_fields=("secret",))
    def create(self, request, *args, **kwargs):
        serializer = WebhookEndpointSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        created = services.endpoint_create(merchant=request.user.merchant, **serializer.validated_data)
        created.endpoint.secret = created.secret
        return Response(WebhookEndpointWithSecretSerializer(created.endpoint).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        endpoint = self.get_object()
        serializer = WebhookEndpointSerializer(endpoint, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        endpoint = services.endpoint_update(endpoint=endpoint, **serializer.validated_data)
        return Response(WebhookEndpointSerializer(endpoint).data)

    def destroy(self, request, *args, **kwargs):
        services.endpoint_delete(endpoint=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Rotate the endpoint's signing secret (the old one keeps signing during a grace period)",
        tags=["webhooks"],
        request=None,
        responses={200: WebhookEndpointWithSecretSerializer},
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        if request.data:
            raise ValidationFailed(details={k: ["Unknown field."] for k in request.data})
        rotated = services.endpoint_rotate_secret(endpoint=self.get_object())
        rotated.endpoint.secret = rotated.secret
        return Response(WebhookEndpointWithSecretSerializer(rotated.endpoint).data)

    @extend_schema(
        summary="List the endpoint's deliveries with every attempt",
        tags=["webhooks"],
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=["pending", "succeeded", "failed"]),
            OpenApiParameter("event_id", OpenApiTypes.STR),
        ],
        responses={200: EventDeliverySerializer(many=True)},
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=api_settings.DEFAULT_PAGINATION_CLASS)
    def deliveries(self, request, pk=None):
        endpoint = self.get_object()
        filterset = DeliveryFilter(
            request.query_params, queryset=replica_queryset(selectors.delivery_list(endpoint=endpoint), request)
        )
        if not filterset.is_valid():
            raise ValidationFailed(details={k: [str(m) for m in v] for k, v in filterset.errors.items()})
        page = self.paginate_queryset(filterset.qs)
        return self.get_paginated_response(EventDeliverySerializer(page, many=True).data)

    @extend_schema(
        summary="Send a delivery again now (same event id)",
        tags=["webhooks"],
        request=None,
        responses={200: EventDeliverySerializer},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=rf"deliveries/(?P<delivery_id>{UUID_RE})/redeliver",
        url_name="delivery-redeliver",
    )
    def redeliver(self, request, pk=None, delivery_id=None):
        endpoint = self.get_object()
        delivery = EventDelivery.objects.filter(endpoint=endpoint, pk=delivery_id).first()
        if delivery is None:
            raise NotFound()
        delivery = services.delivery_redeliver(delivery=delivery)
        delivery = selectors.delivery_list(endpoint=endpoint).get(pk=delivery.pk)
        return Response(EventDeliverySerializer(delivery).data)


# --- Outbound: events -----------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List the merchant's events, newest first", tags=["events"]),
    retrieve=extend_schema(summary="Get an event", tags=["events"]),
)
class EventViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = EventSerializer
    filterset_class = EventFilter
    read_scope = "webhooks:read"
    write_scope = "webhooks:write"
    lookup_value_regex = r"[A-Za-z0-9_]{1,64}"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no caller
            return Event.objects.none()
        return replica_queryset(selectors.event_list(merchant_id=self.request.user.merchant_id), self.request)

    @extend_schema(
        summary="Send an event again to every subscribed endpoint (same event id)",
        tags=["events"],
        request=None,
        responses={200: EventSerializer},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def redeliver(self, request, pk=None):
        event = self.get_object()
        services.event_redeliver(event=event)
        return Response(EventSerializer(self.get_queryset().get(pk=event.pk)).data)
