"""Admin back office through the Django test client: actions run the apps' services after a
confirmation page, leave audit rows, and respect each staff group's permissions."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import call_command

from accounts.models import APIKey
from audit.models import AuditLog
from payments.models import Payment, Refund

CHANGELIST = "/admin/payments/payment/"


def _action(client, url, action, pks, **extra):
    data = {"action": action, "_selected_action": [str(pk) for pk in pks], **extra}
    return client.post(url, data)


@pytest.mark.django_db
def test_finance_refunds_through_the_action_and_confirmation_page(staff_client, captured_payment):
    client = staff_client("finance")
    page = _action(client, CHANGELIST, "refund_payments", [captured_payment.pk])
    assert page.status_code == 200
    assert b"confirm-action-form" in page.content
    assert f'name="amount_{captured_payment.pk}"'.encode() in page.content
    assert b'value="250.00"' in page.content  # the refundable amount is proposed
    assert not Refund.objects.exists()

    done = _action(
        client,
        CHANGELIST,
        "refund_payments",
        [captured_payment.pk],
        post="yes",
        reason="customer asked",
        **{f"amount_{captured_payment.pk}": "40.00"},
    )
    assert done.status_code == 302
    refund = Refund.objects.get(payment=captured_payment)
    assert refund.amount == Decimal("40.00")
    assert refund.status == Refund.Status.SUCCEEDED
    assert refund.reason == "customer asked"
    payment = Payment.objects.get(pk=captured_payment.pk)
    assert payment.status == "partially_refunded"
    assert payment.refunded_amount == Decimal("40.00")
    row = AuditLog.objects.get(action="admin.payment.refund")
    assert row.actor_type == "staff"
    assert row.actor_id == str(client.user.pk)
    assert row.resource_type == "payment"
    assert row.resource_id == str(captured_payment.pk)
    assert row.merchant_id == captured_payment.merchant_id
    assert row.status_code == 200
    assert row.request_data["data"]["amount"] == "40.00"
    assert row.response_data["refund_id"] == str(refund.pk)


@pytest.mark.django_db
def test_support_cannot_refund_above_the_limit(staff_client, captured_payment, settings):
    settings.STAFF_SUPPORT_REFUND_LIMITS = {"USD": 10_000}
    client = staff_client("support")
    response = _action(
        client,
        CHANGELIST,
        "refund_payments",
        [captured_payment.pk],
        post="yes",
        **{f"amount_{captured_payment.pk}": "150.00"},
    )
    assert response.status_code == 403
    assert b"may refund at most 100.00 USD of this payment" in response.content
    assert not Refund.objects.exists()
    payment = Payment.objects.get(pk=captured_payment.pk)
    assert (payment.status, payment.refunded_amount) == ("captured", Decimal("0.00"))
    denied = AuditLog.objects.get(action="admin.payment.refund")
    assert denied.status_code == 403

    # The full amount by default is over the limit too.
    assert _action(client, CHANGELIST, "refund_payments", [captured_payment.pk], post="yes").status_code == 403
    assert not Refund.objects.exists()


@pytest.mark.django_db
def test_support_can_refund_within_the_limit(staff_client, captured_payment):
    client = staff_client("support")
    response = _action(
        client,
        CHANGELIST,
        "refund_payments",
        [captured_payment.pk],
        post="yes",
        **{f"amount_{captured_payment.pk}": "100.00"},
    )
    assert response.status_code == 302
    assert Refund.objects.get(payment=captured_payment).amount == Decimal("100.00")


@pytest.mark.django_db
def test_invalid_refund_amount_changes_nothing(staff_client, captured_payment):
    client = staff_client("finance")
    for bad in ("12.345", "-1", "abc", "251.00"):
        response = _action(
            client,
            CHANGELIST,
            "refund_payments",
            [captured_payment.pk],
            post="yes",
            **{f"amount_{captured_payment.pk}": bad},
        )
        assert response.status_code in (302, 400), bad
    assert not Refund.objects.filter(status=Refund.Status.SUCCEEDED).exists()
    assert Payment.objects.get(pk=captured_payment.pk).refunded_amount == Decimal("0.00")


@pytest.mark.django_db
def test_support_cannot_capture_or_void(staff_client, authorized_payment):
    client = staff_client("support")
    listing = client.get(CHANGELIST)
    assert listing.status_code == 200
    actions = [name for name, _ in listing.context["action_form"].fields["action"].choices]
    assert "refund_payments" in actions
    assert "capture_payments" not in actions and "void_payments" not in actions
    _action(client, CHANGELIST, "capture_payments", [authorized_payment.pk], post="yes")
    assert Payment.objects.get(pk=authorized_payment.pk).status == "authorized"


@pytest.mark.django_db
def test_finance_captures_and_voids_through_the_services(staff_client, authorized_payment, merchant, anet_sandbox):
    from payments.services import payment_create

    client = staff_client("finance")
    confirm = _action(client, CHANGELIST, "capture_payments", [authorized_payment.pk])
    assert b"confirm-action-form" in confirm.content
    assert _action(client, CHANGELIST, "capture_payments", [authorized_payment.pk], post="yes").status_code == 302
    payment = Payment.objects.get(pk=authorized_payment.pk)
    assert (payment.status, payment.captured_amount) == ("captured", Decimal("30.00"))

    other = payment_create(
        merchant=merchant, is_test=True, amount=Decimal("12.00"), currency="USD", card_token="tok_visa", capture=False
    ).payment
    _action(client, CHANGELIST, "void_payments", [other.pk], post="yes")
    assert Payment.objects.get(pk=other.pk).status == "voided"
    assert set(AuditLog.objects.filter(actor_type="staff").values_list("action", flat=True)) == {
        "admin.payment.capture",
        "admin.payment.void",
    }


@pytest.mark.django_db
def test_a_refused_payment_in_an_action_is_shown_and_audited_and_the_others_go_on(
    staff_client, authorized_payment, captured_payment
):
    from django.contrib.messages import get_messages

    client = staff_client("finance")
    response = _action(client, CHANGELIST, "capture_payments", [captured_payment.pk, authorized_payment.pk], post="yes")
    assert response.status_code == 302
    assert Payment.objects.get(pk=authorized_payment.pk).status == "captured"
    assert Payment.objects.get(pk=captured_payment.pk).captured_amount == Decimal("250.00")  # unchanged
    shown = {str(m) for m in get_messages(response.wsgi_request)}
    assert f"{authorized_payment.external_id}: captured." in shown
    (refusal,) = [text for text in shown if text.startswith(f"{captured_payment.external_id}: ")]
    assert refusal != f"{captured_payment.external_id}: captured."
    rows = {row.resource_id: row for row in AuditLog.objects.filter(action="admin.payment.capture")}
    assert rows[str(authorized_payment.pk)].status_code == 200
    assert rows[str(captured_payment.pk)].status_code == 409
    assert rows[str(captured_payment.pk)].response_data["error"]


@pytest.mark.django_db
def test_payment_search_finds_by_customer_email_and_last_four(staff_client, captured_payment):
    client = staff_client("support")
    for term in ("jane@example.com", "1111", captured_payment.external_id, str(captured_payment.pk), "cust_42"):
        response = client.get(CHANGELIST, {"q": term})
        assert response.status_code == 200, term
        assert list(response.context["cl"].result_list) == [captured_payment], term
    assert list(client.get(CHANGELIST, {"q": "nobody"}).context["cl"].result_list) == []


@pytest.mark.django_db
def test_payments_are_read_only_in_the_admin(staff_client, captured_payment):
    client = staff_client("admin")
    url = f"/admin/payments/payment/{captured_payment.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    assert b'name="amount"' not in page.content
    client.post(url, {"amount": "1.00", "status": "refunded"})
    assert Payment.objects.get(pk=captured_payment.pk).amount == Decimal("250.00")
    assert client.get("/admin/payments/payment/add/").status_code == 403


@pytest.mark.django_db
def test_only_admins_revoke_api_keys(staff_client, make_staff, client, api_key):
    url = "/admin/accounts/apikey/"
    support = staff_client("support")
    listing = support.get(url)
    assert listing.status_code == 200
    assert api_key.secret.encode() not in listing.content
    assert b"key_secret_hash" not in listing.content
    _action(support, url, "revoke_keys", [api_key.api_key.pk], post="yes")
    assert APIKey.objects.get(pk=api_key.api_key.pk).status == "active"

    client.force_login(make_staff("finance", username="fin"))
    _action(client, url, "revoke_keys", [api_key.api_key.pk], post="yes")
    assert APIKey.objects.get(pk=api_key.api_key.pk).status == "active"

    admin_user = make_staff("admin", username="boss")
    client.force_login(admin_user)
    assert _action(client, url, "revoke_keys", [api_key.api_key.pk], post="yes").status_code == 302
    assert APIKey.objects.get(pk=api_key.api_key.pk).status == "revoked"
    row = AuditLog.objects.get(action="admin.apikey.revoke")
    assert (row.actor_id, row.resource_id) == (str(admin_user.pk), str(api_key.api_key.pk))


@pytest.mark.django_db
def test_api_key_created_in_the_admin_is_shown_once_and_works(staff_client, merchant):
    from rest_framework.test import APIClient

    client = staff_client("admin")
    response = client.post(
        "/admin/accounts/apikey/add/",
        {
            "merchant": str(merchant.pk),
            "name": "from admin",
            "description": "",
            "mode": "test",
            "permissions": ["audit:read"],
            "rate_limit_per_minute": 100,
            "rate_limit_per_hour": 1000,
            "rate_limit_per_day": 10000,
            "ip_whitelist": "",
            "ip_blacklist": "",
        },
    )
    assert response.status_code == 200, response.content[:2000]
    assert "no-store" in response["Cache-Control"]
    key = response.context["key"]
    created = APIKey.objects.get(name="from admin")
    assert key.startswith(created.key_id + ".")
    assert created.permissions == ["audit:read"]
    # Not on the change page afterwards, and never in the audit trail.
    change = client.get(f"/admin/accounts/apikey/{created.pk}/change/")
    assert key.encode() not in change.content
    assert key.split(".", 1)[1].encode() not in change.content
    assert AuditLog.objects.filter(action="admin.apikey.add", resource_id=str(created.pk)).exists()
    for row in AuditLog.objects.all():
        assert key.split(".", 1)[1] not in str(row.request_data) + str(row.response_data)
    api = APIClient()
    api.credentials(HTTP_X_API_KEY=key)
    assert api.get("/api/v1/audit-logs").status_code == 200


@pytest.mark.django_db
def test_staff_edits_are_audited(staff_client, merchant):
    client = staff_client("admin")
    url = f"/admin/accounts/merchant/{merchant.pk}/change/"
    data = {
        "name": merchant.name,
        "email": "new@merchant.example",
        "status": "active",
        "members-TOTAL_FORMS": "0",
        "members-INITIAL_FORMS": "0",
        "api_keys-TOTAL_FORMS": "0",
        "api_keys-INITIAL_FORMS": "0",
    }
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    row = AuditLog.objects.get(action="admin.merchant.change")
    assert row.resource_id == str(merchant.pk)
    assert row.merchant_id == merchant.pk
    assert row.actor_type == "staff"
    assert row.request_data["data"]["message"] == [{"changed": {"fields": ["Email"]}}]


@pytest.mark.django_db
def test_subscription_actions_run_the_services(staff_client, merchant):
    import datetime

    from subscriptions.models import Subscription
    from webhooks.models import Event

    sub = Subscription.objects.create(
        merchant=merchant,
        external_id="sub_1",
        customer_id="cust_42",
        plan_id="gold",
        billing_cycle="monthly",
        amount=Decimal("9.99"),
        currency="USD",
        start_date=datetime.date(2026, 1, 31),
        next_billing_date=datetime.date(2026, 1, 31),
    )
    url = "/admin/subscriptions/subscription/"
    support = staff_client("support")
    _action(support, url, "pause_subscriptions", [sub.pk], post="yes")
    assert Subscription.objects.get(pk=sub.pk).status == "active"

    support.logout()
    from django.test import Client

    finance = Client()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user(username="fin2", password="x-Str0ng-pass!", is_staff=True)
    user.groups.add(Group.objects.get(name="finance"))
    finance.force_login(user)
    assert _action(finance, url, "pause_subscriptions", [sub.pk], post="yes").status_code == 302
    assert Subscription.objects.get(pk=sub.pk).status == "paused"
    assert Event.objects.filter(type="subscription.paused").count() == 1
    _action(finance, url, "resume_subscriptions", [sub.pk], post="yes")
    assert Subscription.objects.get(pk=sub.pk).status == "active"
    _action(finance, url, "cancel_subscriptions", [sub.pk], post="yes")
    assert Subscription.objects.get(pk=sub.pk).status == "cancelled"
    assert list(
        AuditLog.objects.filter(resource_type="subscription").order_by("created_at").values_list("action", flat=True)
    ) == ["admin.subscription.pause", "admin.subscription.resume", "admin.subscription.cancel"]


@pytest.mark.django_db
def test_dashboard(staff_client, captured_payment, client):
    anonymous = client.get("/admin/dashboard/")
    assert anonymous.status_code == 302
    support = staff_client("support")
    page = support.get("/admin/dashboard/")
    assert page.status_code == 200
    assert b"<svg" in page.content
    assert page.context["count_today"] == 1
    assert page.context["approval_rate"] == 100.0
    assert page.context["volume"][0]["amount"] == Decimal("250.00")
    index = support.get("/admin/")
    assert b'href="/admin/dashboard/"' in index.content


@pytest.mark.django_db
def test_setup_staff_groups_is_idempotent(staff_groups, capsys):
    from django.contrib.auth.models import Group

    call_command("setup_staff_groups", "--json")
    first = capsys.readouterr().out
    call_command("setup_staff_groups", "--json")
    assert capsys.readouterr().out == first
    assert set(Group.objects.values_list("name", flat=True)) >= {"support", "finance", "admin"}
    support = Group.objects.get(name="support")
    codenames = set(support.permissions.values_list("codename", flat=True))
    assert {"view_payment", "refund_payment", "view_apikey", "view_auditlog"} <= codenames
    assert not {"refund_payment_unlimited", "revoke_api_key", "change_payment", "capture_payment"} & codenames
