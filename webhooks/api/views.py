"""HTTP layer of webhooks: merchant endpoints and events (outbound), and the Authorize.Net callback
(inbound). Views parse input and call services; nothing here decides business state."""

from __future__ import annotations

from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from accounts.ipfilter import client_ip
from accounts.principal import MerchantPrincipal
from core.exceptions import AuthenticationFailed, NotFound, PermissionDenied, ValidationFailed
from core.idempotency import OPENAPI_PARAMETER, idempotent
from core.replicas import replica_queryset
from core.text import forbidden_char

from .. import selectors, services
from ..models import Event, EventDelivery, InboundEvent, WebhookEndpoint
from .filters import DeliveryFilter, EventFilter
from .serializers import (
    AnetEventTypesSerializer,
    EventDeliverySerializer,
    EventSerializer,
    InboundEventSerializer,
    InboundReceiptSerializer,
    InboundTestRequestSerializer,
    InboundTestResponseSerializer,
    WebhookEndpointSerializer,
    WebhookEndpointWithSecretSerializer,
)

UUID_RE = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


def _source_ip(request) -> str | None:
    address = client_ip(request)  # honours TRUSTED_PROXIES
    return str(address) if address else None


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


# --- Inbound: Authorize.Net -----------------------------------------------------------------------


class StaffOrScope(BasePermission):
    """A Django staff user (admin session) or a merchant credential holding the view's scope."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if isinstance(user, MerchantPrincipal):
            scope = view.write_scope if request.method not in ("GET", "HEAD", "OPTIONS") else view.read_scope
            if not user.has_scope(scope):
                raise PermissionDenied(f"This credential lacks the '{scope}' permission.", details={"required": scope})
            return True
        if user is not None and getattr(user, "is_authenticated", False):
            if getattr(user, "is_staff", False):
                return True
            raise PermissionDenied("Staff only.")
        raise AuthenticationFailed("Authentication credentials were not provided.")


def _staff_or_merchant_auth():
    from rest_framework.authentication import SessionAuthentication

    return [*api_settings.DEFAULT_AUTHENTICATION_CLASSES, SessionAuthentication]


class AuthorizeNetWebhookView(APIView):
    """Authorize.Net's callback: no API key; the ``X-ANET-Signature`` HMAC is the authentication."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Receive an Authorize.Net webhook notification",
        tags=["webhooks: authorize.net"],
        auth=[],
        parameters=[
            OpenApiParameter(
                "X-ANET-Signature",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=True,
                description="sha512=<hex HMAC-SHA512 of the raw body under the signature key>",
            )
        ],
        request={"application/json": OpenApiTypes.OBJECT},
        responses={
            200: InboundReceiptSerializer,
            400: OpenApiResponse(description="validation_error"),
            401: OpenApiResponse(description="authentication_failed"),
        },
    )
    def post(self, request):
        from django.core.exceptions import RequestDataTooBig

        try:
            raw = request.body
        except RequestDataTooBig:
            raise ValidationFailed("The notification body is too large.", details={"body": ["Too large."]}) from None
        receipt = services.inbound_receive(raw_body=raw, headers=request.headers, source_ip=_source_ip(request))
        return Response({"received": True, "id": str(receipt.event.pk), "duplicate": receipt.duplicate})


class AuthorizeNetTestView(APIView):
    """Builds a sample notification, signs it with our key and feeds it through the real callback path."""

    authentication_classes = _staff_or_merchant_auth()
    permission_classes = [StaffOrScope]
    read_scope = "webhooks:read"
    write_scope = "webhooks:write"

    @extend_schema(
        summary="Send a signed sample Authorize.Net notification through the callback path",
        tags=["webhooks: authorize.net"],
        request=InboundTestRequestSerializer,
        responses={
            200: InboundTestResponseSerializer,
            404: OpenApiResponse(
                description="not_found: no such payment (of this merchant) with a processor transaction"
            ),
        },
    )
    def post(self, request):
        serializer = InboundTestRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        params = serializer.validated_data
        principal = request.user if isinstance(request.user, MerchantPrincipal) else None
        transaction_id = params.get("transaction_id")
        amount = None
        if params.get("payment_id") or (transaction_id and principal is not None):
            payment = self._payment(principal, params.get("payment_id"), transaction_id)
            transaction_id, amount = payment.processor_transaction_id, payment.amount
        raw, headers = services.inbound_sample_build(
            event_type=params["event_type"], transaction_id=transaction_id, amount=amount
        )
        receipt = services.inbound_receive(
            raw_body=raw,
            headers=headers,
            source_ip=_source_ip(request),
            merchant_id=principal.merchant_id if principal else None,
            metadata={"test": True, "requested_by": str(request.user)},
        )
        event = InboundEvent.objects.get(pk=receipt.event.pk)
        import json

        return Response(
            {
                "received": True,
                "id": str(event.pk),
                "duplicate": receipt.duplicate,
                "notification": json.loads(raw),
                "event": InboundEventSerializer(event).data,
            }
        )

    @staticmethod
    def _payment(principal, payment_id, transaction_id):
        """A merchant may only test with its own payments (another merchant's id is a 404)."""
        from payments.models import Payment

        payments = Payment.objects.all()
        if principal is not None:
            payments = payments.filter(merchant_id=principal.merchant_id)
        if payment_id:
            payments = payments.filter(pk=payment_id)
        if transaction_id:
            payments = payments.filter(processor_transaction_id=transaction_id)
        payment = payments.exclude(processor_transaction_id="").first()
        if payment is None:
            raise NotFound("No such payment with a processor transaction.")
        return payment


class AuthorizeNetEventTypesView(APIView):
    authentication_classes = _staff_or_merchant_auth()
    permission_classes = [StaffOrScope]
    read_scope = "webhooks:read"
    write_scope = "webhooks:write"

    @extend_schema(
        summary="Authorize.Net notification types EasyPay accepts",
        tags=["webhooks: authorize.net"],
        responses={200: AnetEventTypesSerializer},
    )
    def get(self, request):
        handled = [t for t in services.ANET_EVENT_TYPES if t.startswith("net.authorize.payment.")]
        return Response({"event_types": list(services.ANET_EVENT_TYPES), "handled": handled})


class AuthorizeNetReplayView(APIView):
    authentication_classes = _staff_or_merchant_auth()
    permission_classes = [StaffOrScope]
    read_scope = "webhooks:read"
    write_scope = "webhooks:write"

    @extend_schema(
        summary="Process a stored, signature-valid Authorize.Net notification again (idempotent)",
        tags=["webhooks: authorize.net"],
        request=None,
        responses={200: InboundEventSerializer},
    )
    def post(self, request, webhook_id: str):
        events = InboundEvent.objects.filter(signature_valid=True)
        principal = request.user if isinstance(request.user, MerchantPrincipal) else None
        if principal is not None:
            # A merchant sees its own notifications and those that matched no merchant.
            events = events.filter(Q(merchant_id=principal.merchant_id) | Q(merchant__isnull=True))
        event = self._lookup(events, webhook_id)
        event = services.inbound_event_replay(event=event)
        return Response(InboundEventSerializer(event).data)

    @staticmethod
    def _lookup(events, webhook_id: str) -> InboundEvent:
        import re
        import uuid

        event = None
        if len(webhook_id) > 255 or forbidden_char(webhook_id) is not None:
            raise NotFound()  # no stored id looks like this (and PostgreSQL cannot even compare a NUL)
        if re.fullmatch(UUID_RE, webhook_id):
            event = events.filter(pk=uuid.UUID(webhook_id)).first()
        if event is None:
            event = events.filter(source=InboundEvent.Source.AUTHORIZE_NET, event_id=webhook_id).first()
        if event is None:
            raise NotFound()
        return event
