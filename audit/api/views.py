"""``GET /api/v1/audit-logs`` and ``GET /api/v1/audit-logs/{id}`` (scope ``audit:read``)."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets

from audit import selectors
from audit.models import AuditLog
from core.exceptions import NotFound
from core.filters import InstantFilter
from core.replicas import replica_queryset

from .serializers import AuditLogSerializer


class AuditLogFilter(django_filters.FilterSet):
    correlation_id = django_filters.CharFilter()
    resource_type = django_filters.CharFilter()
    resource_id = django_filters.CharFilter()
    action = django_filters.CharFilter()
    created_after = InstantFilter(field_name="created_at", lookup_expr="gte")
    created_before = InstantFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditLog
        fields = ("correlation_id", "resource_type", "resource_id", "action", "created_after", "created_before")


@extend_schema_view(
    list=extend_schema(summary="List the merchant's audit log", tags=["audit"]),
    retrieve=extend_schema(summary="Get one audit log entry", tags=["audit"]),
)
class AuditLogViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = AuditLogSerializer
    filterset_class = AuditLogFilter
    read_scope = "audit:read"
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request principal
            return AuditLog.objects.none()
        return replica_queryset(selectors.audit_log_list(merchant_id=self.request.user.merchant_id), self.request)

    def get_object(self):
        row = selectors.audit_log_get(merchant_id=self.request.user.merchant_id, log_id=self.kwargs["pk"])
        if row is None:
            raise NotFound("Audit log entry not found.")
        self.check_object_permissions(self.request, row)
        return row
