"""The audit trail (the design's ``audit_logs`` table): one append-only row per API request and staff action.

Rows are never updated and never deleted one by one: ``save()`` refuses to update, ``delete()`` and the
queryset's ``update()``/``delete()`` raise. The retention purge (``AuditLog.objects.purge_before``,
run by the ``audit.tasks.audit_purge`` beat task) is the only deletion path.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db import models, router
from django.utils import timezone


class AuditLogImmutable(Exception):
    """Raised on any attempt to change or delete audit rows outside the retention purge."""


class AuditLogQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditLogImmutable("Audit log rows are append-only: they cannot be updated.")

    def delete(self):
        raise AuditLogImmutable("Audit log rows are append-only: only the retention purge removes them.")

    # Django's bulk_update goes through update(); the same rule applies.
    def bulk_update(self, objs, fields, batch_size=None):
        raise AuditLogImmutable("Audit log rows are append-only: they cannot be updated.")

    def purge_before(self, cutoff: datetime, *, batch_size: int = 5000) -> int:
        """Delete rows created before ``cutoff`` in batches; returns how many. The only deletion path."""
        total = 0
        model = self.model
        while True:
            ids = list(model.all_objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[:batch_size])
            if not ids:
                return total
            qs = models.QuerySet(model=model, using=router.db_for_write(model)).filter(pk__in=ids)
            total += qs._raw_delete(qs.db)


class AuditLog(models.Model):
    class ActorType(models.TextChoices):
        API_KEY = "api_key"
        JWT = "jwt"
        STAFF = "staff"
        SYSTEM = "system"
        ANONYMOUS = "anonymous"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    correlation_id = models.CharField(max_length=128, blank=True, default="")
    service_name = models.CharField(max_length=50)
    action = models.CharField(max_length=100)
    resource_type = models.CharField(max_length=50, blank=True, default="")
    resource_id = models.CharField(max_length=255, blank=True, default="")
    # PROTECT: an audit trail outlives nothing it describes; a merchant with history is suspended, not deleted.
    merchant = models.ForeignKey(  # indexed by audit_merchant_recent_idx
        "accounts.Merchant", on_delete=models.PROTECT, null=True, blank=True, related_name="audit_logs", db_index=False
    )
    actor_type = models.CharField(max_length=20, choices=ActorType.choices, default=ActorType.ANONYMOUS)
    actor_id = models.CharField(max_length=128, blank=True, default="")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True, default="")
    request_data = models.JSONField(null=True, blank=True)
    response_data = models.JSONField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # The time of the event, set by the writer (a buffered row keeps the time of its request).
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = AuditLogQuerySet.as_manager()
    all_objects = models.Manager()  # noqa: DJ012 (reads only; used by the purge to select ids)

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name = "audit log entry"
        verbose_name_plural = "audit log"
        default_permissions = ("view",)
        indexes = [
            models.Index(fields=["correlation_id"], name="audit_correlation_idx"),
            models.Index(fields=["merchant", "-created_at", "-id"], name="audit_merchant_recent_idx"),
            models.Index(fields=["resource_type", "resource_id"], name="audit_resource_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.resource_type}:{self.resource_id} ({self.status_code})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AuditLogImmutable("Audit log rows are append-only: they cannot be updated.")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditLogImmutable("Audit log rows are append-only: only the retention purge removes them.")


class BackOffice(models.Model):
    """No table: holds the back-office permissions that staff groups are given (Django's "global
    permissions" idiom). Admin actions check them with ``user.has_perm("audit.<codename>")``."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_dashboard", "Can view the back-office dashboard"),
            ("refund_payment", "Can refund payments (support: up to STAFF_SUPPORT_REFUND_LIMIT)"),
            ("refund_payment_unlimited", "Can refund payments of any amount"),
            ("capture_payment", "Can capture authorized payments"),
            ("void_payment", "Can void payments"),
            ("manage_subscription", "Can pause, resume and cancel subscriptions"),
            ("revoke_api_key", "Can create and revoke API keys"),
            ("replay_webhook", "Can replay inbound webhooks and redeliver outbound ones"),
            ("gdpr_export", "Can export everything held about a customer"),
            ("gdpr_erase", "Can erase (pseudonymize) a customer's personal data"),
        ]

    def __str__(self) -> str:
        return "back office"
