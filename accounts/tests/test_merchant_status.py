"""Suspending and reactivating a merchant: one service for the admin, commands and the shell."""

from __future__ import annotations

import pytest

from accounts.models import Merchant
from accounts.services import merchant_reactivate, merchant_suspend

pytestmark = pytest.mark.django_db


def test_a_suspended_merchants_key_is_refused_at_once_and_works_again_after_reactivation(api_client):
    merchant = api_client.merchant
    assert api_client.get("/api/v1/auth/me").status_code == 200  # the key's copy is now cached

    suspended = merchant_suspend(merchant=merchant)

    assert suspended.status == Merchant.Status.SUSPENDED
    assert Merchant.objects.get(pk=merchant.pk).status == "suspended"
    assert api_client.get("/api/v1/auth/me").status_code == 401

    assert merchant_suspend(merchant=merchant).status == "suspended"  # twice: nothing more happens
    assert merchant_reactivate(merchant=merchant).status == Merchant.Status.ACTIVE
    assert Merchant.objects.get(pk=merchant.pk).status == "active"
    assert api_client.get("/api/v1/auth/me").status_code == 200


def test_the_admin_suspends_through_the_service_and_saves_the_other_edits(api_client, admin_client, monkeypatch):
    from accounts import admin as accounts_admin

    merchant = api_client.merchant
    assert api_client.get("/api/v1/auth/me").status_code == 200
    calls = []
    real = accounts_admin.merchant_suspend
    monkeypatch.setattr(accounts_admin, "merchant_suspend", lambda **kw: calls.append(kw) or real(**kw))
    data = {
        "name": merchant.name,
        "email": "changed@merchant.example",
        "status": "suspended",
        "members-TOTAL_FORMS": "0",
        "members-INITIAL_FORMS": "0",
        "api_keys-TOTAL_FORMS": "0",
        "api_keys-INITIAL_FORMS": "0",
    }

    response = admin_client.post(f"/admin/accounts/merchant/{merchant.pk}/change/", data)

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    assert [call["merchant"].pk for call in calls] == [merchant.pk]
    row = Merchant.objects.get(pk=merchant.pk)
    assert (row.status, row.email) == ("suspended", "changed@merchant.example")
    assert api_client.get("/api/v1/auth/me").status_code == 401
