"""Serializers of the audit-logs API."""

from __future__ import annotations

from rest_framework import serializers

from audit.models import AuditLog


class AuditLogSerializer(serializers.ModelSerializer):
    merchant_id = serializers.UUIDField(read_only=True, allow_null=True)
    # The request id of the call (X-Request-ID); the design names it correlation_id.
    correlation_id = serializers.CharField(read_only=True)
    request_data = serializers.JSONField(read_only=True, allow_null=True)
    response_data = serializers.JSONField(read_only=True, allow_null=True)

    class Meta:
        model = AuditLog
        fields = (
            "id",
            "correlation_id",
            "service_name",
            "action",
            "resource_type",
            "resource_id",
            "merchant_id",
            "actor_type",
            "actor_id",
            "ip_address",
            "user_agent",
            "request_data",
            "response_data",
            "status_code",
            "duration_ms",
            "created_at",
        )
        read_only_fields = fields
