"""/api/v1/subscriptions (CONTRACT section 6): parse the request, call a service, render the result."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.idempotency import OPENAPI_PARAMETER, idempotent
from core.replicas import replica_queryset

from .. import selectors, services
from ..models import Subscription
from .filters import SubscriptionFilter
from .serializers import SubscriptionCreateSerializer, SubscriptionSerializer, SubscriptionUpdateSerializer

_ERRORS = {
    400: OpenApiResponse(OpenApiTypes.OBJECT, description="validation_error"),
    404: OpenApiResponse(OpenApiTypes.OBJECT, description="not_found"),
    409: OpenApiResponse(OpenApiTypes.OBJECT, description="invalid_state"),
}
_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="Subscription id")


@extend_schema_view(
    list=extend_schema(summary="List subscriptions (newest first, cursor pagination)"),
    retrieve=extend_schema(summary="Get a subscription", parameters=[_ID], responses={200: SubscriptionSerializer}),
    create=extend_schema(
        summary="Create a subscription",
        description="With an Idempotency-Key, a retried request never creates a second subscription.",
        request=SubscriptionCreateSerializer,
        parameters=[OPENAPI_PARAMETER],
        responses={
            201: SubscriptionSerializer,
            **_ERRORS,
            402: OpenApiResponse(OpenApiTypes.OBJECT, description="card_declined (live card could not be saved)"),
        },
    ),
    update=extend_schema(
        summary="Update a subscription (amount, plan_id, metadata, card_token, customer_email, customer_name)",
        parameters=[_ID],
        request=SubscriptionUpdateSerializer,
        responses={200: SubscriptionSerializer, **_ERRORS},
    ),
    partial_update=extend_schema(
        summary="Update a subscription (amount, plan_id, metadata, card_token, customer_email, customer_name)",
        parameters=[_ID],
        request=SubscriptionUpdateSerializer,
        responses={200: SubscriptionSerializer, **_ERRORS},
    ),
    destroy=extend_schema(
        summary="Cancel a subscription (the record stays)",
        parameters=[_ID],
        request=None,
        responses={200: SubscriptionSerializer, **_ERRORS},
    ),
)
@extend_schema(tags=["subscriptions"])
class SubscriptionViewSet(viewsets.GenericViewSet):
    serializer_class = SubscriptionSerializer
    filterset_class = SubscriptionFilter
    queryset = Subscription.objects.none()
    read_scope = "subscriptions:read"
    write_scope = "subscriptions:write"
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Subscription.objects.none()
        return replica_queryset(selectors.subscription_list(merchant_id=self.request.user.merchant_id), self.request)

    def get_object(self) -> Subscription:
        return selectors.subscription_get(merchant_id=self.request.user.merchant_id, subscription_id=self.kwargs["pk"])

    def list(self, request):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(SubscriptionSerializer(page, many=True).data)

    def retrieve(self, request, pk=None):
        return Response(SubscriptionSerializer(self.get_object()).data)

    @idempotent
    def create(self, request):
        principal = request.user
        today = services.utc_today()
        serializer = SubscriptionCreateSerializer(
            data=request.data, context={"today": today, "is_test": principal.is_test}
        )
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        subscription = services.subscription_create(
            merchant=principal.merchant,
            is_test=principal.is_test,
            customer_id=data["customer_id"],
            plan_id=data["plan_id"],
            amount=data["amount"],
            currency=data["currency"],
            billing_cycle=data["billing_cycle"],
            card_token=data["card_token"],
            start_date=data.get("start_date"),
            metadata=data.get("metadata"),
            customer_email=data.get("customer_email", ""),
            customer_name=data.get("customer_name", ""),
            customer_phone=data.get("customer_phone", ""),
            external_id=data.get("external_id"),
            today=today,
        )
        return Response(SubscriptionSerializer(subscription).data, status=status.HTTP_201_CREATED)

    def update(self, request, pk=None):
        subscription = self.get_object()
        serializer = SubscriptionUpdateSerializer(data=request.data, context={"currency": subscription.currency})
        serializer.is_valid(raise_exception=True)
        subscription = services.subscription_update(subscription=subscription, data=dict(serializer.validated_data))
        return Response(SubscriptionSerializer(subscription).data)

    def partial_update(self, request, pk=None):
        return self.update(request, pk=pk)

    def destroy(self, request, pk=None):
        subscription = services.subscription_cancel(subscription=self.get_object())
        return Response(SubscriptionSerializer(subscription).data)

    @extend_schema(
        summary="Pause billing (active or past_due -> paused)",
        parameters=[_ID],
        request=None,
        responses={200: SubscriptionSerializer, 404: _ERRORS[404], 409: _ERRORS[409]},
    )
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        subscription = services.subscription_pause(subscription=self.get_object())
        return Response(SubscriptionSerializer(subscription).data)

    @extend_schema(
        summary="Resume billing (paused -> active) at the next anchored date; paused periods are not billed",
        parameters=[_ID],
        request=None,
        responses={200: SubscriptionSerializer, 404: _ERRORS[404], 409: _ERRORS[409]},
    )
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        subscription = services.subscription_resume(subscription=self.get_object())
        return Response(SubscriptionSerializer(subscription).data)
