"""Fixtures of the audit tests: synchronous audit writes (deterministic rows)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _audit_sync_writes(settings):
    settings.AUDIT_SYNC_WRITES = True


@pytest.fixture
def staff_groups(db):
    """The support/finance/admin groups (re-created: transactional tests elsewhere flush them)."""
    from audit.staff_groups import staff_groups_setup

    staff_groups_setup()


@pytest.fixture
def make_staff(db, staff_groups, django_user_model):
    """``make_staff("support")`` -> a staff user (not superuser) in that group."""
    from django.contrib.auth.models import Group

    def _make(group: str, username: str | None = None):
        user = django_user_model.objects.create_user(
            username=username or f"{group}-user", password="pw-Str0ng-enough!", is_staff=True
        )
        user.groups.add(Group.objects.get(name=group))
        return user

    return _make


@pytest.fixture
def staff_client(client, make_staff):
    """``staff_client("finance")`` -> a Django test client logged into the admin as that role."""

    def _login(group: str):
        user = make_staff(group)
        client.force_login(user)
        client.user = user
        return client

    return _login


@pytest.fixture
def captured_payment(anet_sandbox, merchant):
    """A captured (and, by the emulator's default, settled) 250.00 USD payment of ``merchant``."""
    from decimal import Decimal

    from payments.services import payment_create

    payment = payment_create(
        merchant=merchant,
        is_test=True,
        amount=Decimal("250.00"),
        currency="USD",
        card_token="tok_visa",
        customer_id="cust_42",
        customer_email="jane@example.com",
        customer_name="Jane Doe",
    ).payment
    assert payment.status == "captured"
    return payment


@pytest.fixture
def authorized_payment(anet_sandbox, merchant):
    from decimal import Decimal

    from payments.services import payment_create

    payment = payment_create(
        merchant=merchant, is_test=True, amount=Decimal("30.00"), currency="USD", card_token="tok_visa", capture=False
    ).payment
    assert payment.status == "authorized"
    return payment
