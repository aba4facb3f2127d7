"""HTTP layer of the Authorize.Net inbound path, mounted under /api/v1/webhooks/authorize-net...: the
callback (authenticated by its signature), a signed sample sent through it, the notification types,
and replay. Views parse input and call ``payments.inbound.services``."""

from __future__ import annotations

import json
import re
import uuid

from django.core.exceptions import RequestDataTooBig
from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from accounts.ipfilter import client_ip
from accounts.principal import MerchantPrincipal
from core.exceptions import AuthenticationFailed, NotFound, PermissionDenied, ValidationFailed
from core.text import forbidden_char
from payments.models import Payment
from webhooks.models import InboundEvent

from .. import services
from .serializers import (
    AnetEventTypesSerializer,
    InboundEventSerializer,
    InboundReceiptSerializer,
    InboundTestRequestSerializer,
    InboundTestResponseSerializer,
)

UUID_RE = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


def _source_ip(request) -> str | None:
    address = client_ip(request)  # honours TRUSTED_PROXIES
    return str(address) if address else None


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


class _InboundView(APIView):
    # The routes are the webhooks API's (/api/v1/webhooks/authorize-net...): their audit rows keep
    # service_name "webhooks", as before the code moved here.
    audit_service_name = "webhooks"


def _staff_or_merchant_auth():
    return [*api_settings.DEFAULT_AUTHENTICATION_CLASSES, SessionAuthentication]


class AuthorizeNetWebhookView(_InboundView):
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
        try:
            raw = request.body
        except RequestDataTooBig:
            raise ValidationFailed("The notification body is too large.", details={"body": ["Too large."]}) from None
        receipt = services.inbound_receive(raw_body=raw, headers=request.headers, source_ip=_source_ip(request))
        return Response({"received": True, "id": str(receipt.event.pk), "duplicate": receipt.duplicate})


class AuthorizeNetTestView(_InboundView):
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


class AuthorizeNetEventTypesView(_InboundView):
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


class AuthorizeNetReplayView(_InboundView):
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
