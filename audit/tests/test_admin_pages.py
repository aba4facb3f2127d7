"""Every registered admin page renders; secrets never appear; webhook replay/redeliver actions work."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.utils import timezone

from audit.models import AuditLog
from core.adminlib import change_url
from webhooks.models import EventDelivery, InboundEvent
from webhooks.tests.factories import EventDeliveryFactory, EventFactory, InboundEventFactory, WebhookEndpointFactory


@pytest.fixture
def endpoint(merchant):
    return WebhookEndpointFactory(merchant=merchant, url="http://127.0.0.1:9/hook", events=["*"])


@pytest.mark.django_db
def test_every_changelist_and_change_page_renders(staff_client, captured_payment, endpoint):
    client = staff_client("admin")
    for model in admin.site._registry:
        opts = model._meta
        url = f"/admin/{opts.app_label}/{opts.model_name}/"
        assert client.get(url).status_code == 200, url
        obj = model._default_manager.first()
        if obj is not None:
            change = change_url(obj)  # the key quoted, as the admin's own links have it (evt_24... is evt$...)
            status = client.get(change).status_code
            if status == 302 and not model._default_manager.filter(pk=obj.pk).exists():
                # A row committed by a background thread of an earlier test (another connection) and
                # removed by its cleanup in between: the admin rightly answers "no such object".
                continue
            assert status == 200, change
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_webhook_endpoint_secret_is_never_shown(staff_client, endpoint):
    client = staff_client("admin")
    for url in ("/admin/webhooks/webhookendpoint/", f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/"):
        page = client.get(url)
        assert page.status_code == 200
        assert endpoint.secret.encode() not in page.content


@pytest.mark.django_db
def test_redeliver_action_goes_through_the_service(staff_client, merchant, endpoint):
    event = EventFactory(merchant=merchant, type="payment.captured", data={"id": "p"})
    delivery = EventDeliveryFactory(
        event=event, endpoint=endpoint, status=EventDelivery.Status.FAILED, attempt_count=3, completed_at=timezone.now()
    )
    support = staff_client("support")
    url = "/admin/webhooks/eventdelivery/"
    support.post(url, {"action": "redeliver_deliveries", "_selected_action": [str(delivery.pk)], "post": "yes"})
    assert EventDelivery.objects.get(pk=delivery.pk).schedule_offset == 0  # support may not redeliver

    from django.test import Client

    from audit.staff_groups import staff_groups_setup

    staff_groups_setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    ops = get_user_model().objects.create_user(username="ops", password="0ps-Str0ng-pass!", is_staff=True)
    ops.groups.add(Group.objects.get(name="admin"))
    client = Client()
    client.force_login(ops)
    page = client.post(url, {"action": "redeliver_deliveries", "_selected_action": [str(delivery.pk)]})
    assert b"confirm-action-form" in page.content
    done = client.post(url, {"action": "redeliver_deliveries", "_selected_action": [str(delivery.pk)], "post": "yes"})
    assert done.status_code == 302
    # A new retry schedule started (the eager task has tried again already; the endpoint is closed).
    assert EventDelivery.objects.get(pk=delivery.pk).schedule_offset == 3
    assert AuditLog.objects.filter(action="admin.eventdelivery.redeliver", resource_id=str(delivery.pk)).exists()


@pytest.mark.django_db
def test_replay_refuses_an_invalid_signature_and_audits_it(staff_client):
    event = InboundEventFactory(event_id="n1", event_type="net.authorize.payment.authcapture.created")
    client = staff_client("admin")
    url = "/admin/webhooks/inboundevent/"
    client.post(url, {"action": "replay_events", "_selected_action": [str(event.pk)], "post": "yes"})
    row = AuditLog.objects.get(action="admin.inboundevent.replay")
    assert row.status_code == 409
    assert InboundEvent.objects.get(pk=event.pk).status == "pending"
