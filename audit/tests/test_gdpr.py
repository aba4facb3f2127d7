"""GDPR: staff-only export of everything held about a customer, and erasure by pseudonymization."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal

import pytest

from audit.models import AuditLog
from audit.services import customer_data_erase, customer_data_export, erased_values
from payments.models import Payment, Refund
from subscriptions.models import Subscription
from webhooks.models import Event


@pytest.fixture
def customer_data(captured_payment, merchant, other_merchant):
    from django.db import transaction

    from payments.services import refund_create
    from webhooks.services import event_record

    refund_create(payment=captured_payment, amount=Decimal("10.00"))
    sub = Subscription.objects.create(
        merchant=merchant,
        external_id="sub_gdpr",
        customer_id="cust_42",
        customer_email="jane@example.com",
        customer_name="Jane Doe",
        plan_id="gold",
        billing_cycle="monthly",
        amount=Decimal("9.99"),
        currency="USD",
        start_date=datetime.date(2026, 1, 1),
        payment_method={"type": "test_token", "card_token": "tok_visa"},
    )
    with transaction.atomic():
        event_record(
            merchant_id=merchant.pk,
            event_type="subscription.created",
            data={"id": str(sub.pk), "customer_id": "cust_42", "customer_email": "jane@example.com"},
        )
    # Another merchant's customer with the same id is not part of the export or the erasure.
    Subscription.objects.create(
        merchant=other_merchant,
        external_id="sub_other",
        customer_id="cust_42",
        customer_email="someone@else.example",
        customer_name="Other Person",
        plan_id="p",
        billing_cycle="monthly",
        amount=Decimal("1.00"),
        currency="USD",
        start_date=datetime.date(2026, 1, 1),
    )
    AuditLog.objects.create(
        service_name="payments", action="payments.create", resource_id=str(captured_payment.pk), merchant=merchant
    )
    return {"payment": captured_payment, "subscription": sub}


@pytest.mark.django_db
def test_export_holds_every_record_of_the_customer_and_no_secrets(customer_data, merchant):
    export = customer_data_export(merchant=merchant, customer_id="cust_42")
    assert [p["id"] for p in export["payments"]] == [str(customer_data["payment"].pk)]
    assert export["payments"][0]["customer_email"] == "jane@example.com"  # the subject's own data
    assert len(export["refunds"]) == 1
    assert export["refunds"][0]["amount"] == "10.00"
    assert [s["external_id"] for s in export["subscriptions"]] == ["sub_gdpr"]
    assert export["subscriptions"][0]["payment_method"]["card_token"] == "[REDACTED]"
    event_types = {e["type"] for e in export["events"]}
    assert "subscription.created" in event_types
    assert "payment.captured" in event_types or "payment.partially_refunded" in event_types
    assert any(row["action"] == "payments.create" for row in export["audit_logs"])
    text = json.dumps(export)
    assert "someone@else.example" not in text
    assert "tok_visa" not in text


@pytest.mark.django_db
def test_erase_pseudonymizes_and_keeps_money_intact(customer_data, merchant, other_merchant, make_staff):
    staff = make_staff("admin")
    payment_before = Payment.objects.get(pk=customer_data["payment"].pk)
    counts = customer_data_erase(merchant=merchant, customer_id="cust_42", actor=staff)
    name, email = erased_values(merchant=merchant, customer_id="cust_42")
    assert counts["payments"] == 1
    assert counts["subscriptions"] == 1
    assert counts["events"] >= 2
    payment = Payment.objects.get(pk=payment_before.pk)
    assert (payment.customer_name, payment.customer_email, payment.customer_id) == (name, email, "cust_42")
    assert (payment.amount, payment.captured_amount, payment.refunded_amount, payment.status) == (
        payment_before.amount,
        payment_before.captured_amount,
        payment_before.refunded_amount,
        payment_before.status,
    )
    assert Refund.objects.filter(payment=payment).count() == 1
    assert Subscription.objects.get(external_id="sub_gdpr").customer_email == email
    assert Subscription.objects.get(external_id="sub_other").customer_email == "someone@else.example"
    assert not Event.objects.filter(merchant=merchant, data__customer_email="jane@example.com").exists()
    assert "Jane Doe" not in json.dumps(list(Event.objects.filter(merchant=merchant).values_list("data", flat=True)))
    row = AuditLog.objects.get(action="admin.customer.erase")
    assert (row.resource_type, row.resource_id, row.merchant_id) == ("customer", "cust_42", merchant.pk)
    assert row.actor_id == str(staff.pk)
    # Nothing readable is left in the audit trail either.
    assert "jane@example.com" not in json.dumps(list(AuditLog.objects.values_list("request_data", "response_data")))
    # Running it again changes nothing more.
    assert customer_data_erase(merchant=merchant, customer_id="cust_42", actor=staff)["payments"] == 0


@pytest.mark.django_db
def test_admin_gdpr_page_is_staff_only_and_audited(customer_data, merchant, staff_client, client, make_staff):
    assert client.get("/admin/gdpr/").status_code == 302  # not logged in
    support = staff_client("support")
    assert support.get("/admin/gdpr/").status_code == 403
    support.logout()

    client.force_login(make_staff("admin", username="dpo"))
    response = client.post(
        "/admin/gdpr/", {"merchant": str(merchant.pk), "customer_id": "cust_42", "operation": "export"}
    )
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="customer-cust_42.json"'
    assert json.loads(response.content)["payments"][0]["customer_id"] == "cust_42"
    assert AuditLog.objects.filter(action="admin.customer.export", resource_id="cust_42").count() == 1

    refused = client.post(
        "/admin/gdpr/", {"merchant": str(merchant.pk), "customer_id": "cust_42", "operation": "erase"}
    )
    assert refused.status_code == 400  # the confirmation box was not ticked
    assert Payment.objects.get(pk=customer_data["payment"].pk).customer_email == "jane@example.com"
    done = client.post(
        "/admin/gdpr/",
        {"merchant": str(merchant.pk), "customer_id": "cust_42", "operation": "erase", "confirm": "on"},
    )
    assert done.status_code == 200
    assert Payment.objects.get(pk=customer_data["payment"].pk).customer_email.startswith("erased-")
    assert AuditLog.objects.filter(action="admin.customer.erase").count() == 1
