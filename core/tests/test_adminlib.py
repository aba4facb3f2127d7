"""core.adminlib: the shared display helpers and the audit recorder the audit app registers."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory

from audit.models import AuditLog
from core import adminlib
from core.adminlib import change_url


def test_status_display_tags_test_objects_only_when_asked():
    plain = adminlib.status_display().__func__
    tagged = adminlib.status_display(test_tag=True).__func__
    live, test = SimpleNamespace(status="captured", is_test=False), SimpleNamespace(status="captured", is_test=True)
    badge = '<span class="ep-badge ep-badge--ok" title="captured">captured</span>'
    assert plain(test) == badge
    assert tagged(live) == badge
    assert tagged(test) == badge + '<span class="ep-tag">test</span>'
    assert tagged.short_description == "status" and tagged.admin_order_field == "status"


def test_reference_display_shows_the_id_over_the_merchant_escaped():
    show = adminlib.reference_display(description="payment").__func__
    obj = SimpleNamespace(external_id="pay_1", merchant=SimpleNamespace(name="A & <B>"))
    assert show(obj) == (
        '<span class="ep-id">pay_1</span><span class="ep-sub" title="A &amp; &lt;B&gt;">A &amp; &lt;B&gt;</span>'
    )
    assert show.short_description == "payment" and show.admin_order_field == "created_at"


def _request():
    request = RequestFactory().post("/admin/accounts/merchant/")
    request.user = AnonymousUser()
    return request


@pytest.mark.django_db
def test_audit_admin_action_writes_the_row_through_the_registered_recorder(merchant):
    adminlib.audit_admin_action(_request(), merchant, "suspend", result={"ok": True})
    row = AuditLog.objects.get(action="admin.merchant.suspend")
    assert row.resource_type == "merchant" and row.resource_id == str(merchant.pk)
    assert str(row.merchant_id) == str(merchant.pk)


@pytest.mark.django_db
def test_without_a_recorder_a_staff_action_fails_rather_than_going_unrecorded(merchant, monkeypatch):
    monkeypatch.setattr(adminlib, "_recorder", None)
    with pytest.raises(ImproperlyConfigured):
        adminlib.audit_admin_action(_request(), merchant, "suspend")
    assert not AuditLog.objects.filter(action="admin.merchant.suspend").exists()


@pytest.mark.django_db
def test_change_url_quotes_keys_the_admin_would_read_as_escapes(admin_client, merchant):
    """``evt_24...``: unquoted, the admin reads ``_24`` as ``$`` and answers "no such object" (302)."""
    from webhooks.tests.factories import EventFactory

    event = EventFactory(id="evt_24c1a101f86dd60df2dc0941", merchant=merchant)
    assert change_url(event).endswith("/evt_5F24c1a101f86dd60df2dc0941/change/")
    assert admin_client.get(change_url(event)).status_code == 200
    assert admin_client.get(f"/admin/webhooks/event/{event.pk}/change/").status_code == 302  # the trap
