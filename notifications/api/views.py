"""HTTP layer of notifications: the merchant's settings, the log of what was sent, and resending.
Views parse input and call services; nothing here decides what is sent."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from core.exceptions import ValidationFailed
from core.idempotency import idempotent

from .. import selectors, services
from ..models import Notification
from .filters import NotificationFilter
from .serializers import NotificationSerializer, NotificationSettingsSerializer, NotificationSettingsUpdateSerializer


class NotificationSettingsView(APIView):
    read_scope = "notifications:read"
    write_scope = "notifications:write"

    @extend_schema(
        summary="Get the merchant's notification settings",
        tags=["notifications"],
        responses={200: NotificationSettingsSerializer},
    )
    def get(self, request):
        prefs = services.settings_for(merchant_id=request.user.merchant_id)
        return Response(NotificationSettingsSerializer(prefs).data)

    @extend_schema(
        summary="Change the merchant's notification settings (any subset of the fields)",
        tags=["notifications"],
        request=NotificationSettingsUpdateSerializer,
        responses={200: NotificationSettingsSerializer},
    )
    def put(self, request):
        data = request.data
        if isinstance(data, dict) and "updated_at" in data:
            # What GET returned may be PUT back as it is: the read-only timestamp is ignored.
            data = {k: v for k, v in data.items() if k != "updated_at"}
        serializer = NotificationSettingsUpdateSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        if not serializer.validated_data:
            raise ValidationFailed("Give at least one setting to change.", details={"body": ["No settings given."]})
        prefs = services.notification_settings_update(
            merchant=request.user.merchant, changes=dict(serializer.validated_data)
        )
        return Response(NotificationSettingsSerializer(prefs).data)

    @extend_schema(exclude=True)
    def patch(self, request):
        return self.put(request)


@extend_schema_view(
    list=extend_schema(summary="List the notifications sent for the merchant, newest first", tags=["notifications"]),
    retrieve=extend_schema(summary="Get a notification", tags=["notifications"]),
)
class NotificationViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = NotificationSerializer
    filterset_class = NotificationFilter
    read_scope = "notifications:read"
    write_scope = "notifications:write"
    lookup_value_regex = r"[A-Za-z0-9_]{1,64}"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no caller
            return Notification.objects.none()
        return selectors.notification_list(merchant_id=self.request.user.merchant_id)

    @extend_schema(
        summary="Send a notification again (a new notification to the same recipient, linked to this one)",
        tags=["notifications"],
        request=None,
        responses={200: NotificationSerializer},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    @idempotent
    def resend(self, request, pk=None):
        if request.data:
            raise ValidationFailed(details={k: ["Unknown field."] for k in request.data})
        original = self.get_object()
        row = services.notification_resend(notification=original)
        return Response(NotificationSerializer(self.get_queryset().get(pk=row.pk)).data)
