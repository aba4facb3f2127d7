"""The audit trail is append-only; the retention purge is its only deletion path."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from audit.models import AuditLog, AuditLogImmutable
from audit.tasks import audit_purge


def _row(**fields) -> AuditLog:
    defaults = {"service_name": "test", "action": "payments.create", "resource_type": "payment"}
    defaults.update(fields)
    return AuditLog.objects.create(**defaults)


@pytest.mark.django_db
def test_rows_cannot_be_updated_or_deleted():
    row = _row(resource_id="r1")
    row.action = "tampered"
    with pytest.raises(AuditLogImmutable):
        row.save()
    with pytest.raises(AuditLogImmutable):
        row.delete()
    with pytest.raises(AuditLogImmutable):
        AuditLog.objects.filter(pk=row.pk).update(action="tampered")
    with pytest.raises(AuditLogImmutable):
        AuditLog.objects.filter(pk=row.pk).delete()
    with pytest.raises(AuditLogImmutable):
        AuditLog.objects.all().delete()
    with pytest.raises(AuditLogImmutable):
        AuditLog.objects.bulk_update([row], ["action"])
    stored = AuditLog.objects.get(pk=row.pk)
    assert stored.action == "payments.create"
    assert AuditLog.objects.count() == 1


@pytest.mark.postgres  # the UPDATE trigger exists on PostgreSQL only
@pytest.mark.django_db
def test_postgres_refuses_an_update_that_bypasses_the_model():
    row = _row()
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditlog SET action = 'x' WHERE id = %s", [row.pk])
    assert AuditLog.objects.get(pk=row.pk).action == "payments.create"


@pytest.mark.django_db
def test_purge_task_deletes_only_rows_past_retention(settings):
    settings.AUDIT_RETENTION_DAYS = 30
    old = _row(created_at=timezone.now() - timedelta(days=31))
    recent = _row(created_at=timezone.now() - timedelta(days=29))
    assert audit_purge.delay().get() == 1
    assert list(AuditLog.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not AuditLog.objects.filter(pk=old.pk).exists()


@pytest.mark.django_db
def test_admin_offers_no_add_change_or_delete(admin_client):
    row = _row()
    assert admin_client.get("/admin/audit/auditlog/").status_code == 200
    assert admin_client.get(f"/admin/audit/auditlog/{row.pk}/change/").status_code == 200
    assert admin_client.get("/admin/audit/auditlog/add/").status_code == 403
    assert admin_client.get(f"/admin/audit/auditlog/{row.pk}/delete/").status_code == 403
    response = admin_client.post(
        "/admin/audit/auditlog/", {"action": "delete_selected", "_selected_action": [str(row.pk)], "post": "yes"}
    )
    assert AuditLog.objects.filter(pk=row.pk).exists()
    assert response.status_code in (200, 302)
