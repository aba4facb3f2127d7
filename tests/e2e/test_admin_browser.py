"""The back office in a real browser: log in, find a payment, refund it through the action and its
confirmation page, and look at the dashboard. Screenshots go to tests/e2e/artifacts/.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package; without them the test
is skipped with the reason. Nothing is downloaded at run time (no Selenium Manager, no browser fetch).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from .chrome import ARTIFACTS, MARKS

pytestmark = MARKS


def _shot(driver, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


@pytest.mark.django_db(transaction=True)
def test_staff_refunds_a_payment_and_sees_the_dashboard(browser, live_server, anet_sandbox, settings, merchant):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from audit.models import AuditLog
    from audit.staff_groups import staff_groups_setup
    from payments.models import Payment, Refund
    from payments.services import payment_create

    settings.AUDIT_SYNC_WRITES = True
    staff_groups_setup()
    user = get_user_model().objects.create_user(username="fiona", password="E2e-finance-Pass!", is_staff=True)
    user.groups.add(Group.objects.get(name="finance"))
    payment = payment_create(
        merchant=merchant,
        is_test=True,
        amount=Decimal("80.00"),
        currency="USD",
        card_token="tok_visa_4242",
        customer_id="cust_e2e",
        customer_email="e2e.buyer@example.com",
    ).payment
    assert payment.status == "captured"

    wait = WebDriverWait(browser, 20)
    # Log in.
    browser.get(f"{live_server.url}/admin/login/?next=/admin/")
    browser.find_element(By.NAME, "username").send_keys("fiona")
    browser.find_element(By.NAME, "password").send_keys("E2e-finance-Pass!")
    _shot(browser, "01-login")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait.until(EC.presence_of_element_located((By.ID, "easypay-backoffice")))
    assert "Back office" in browser.page_source
    _shot(browser, "02-index")

    # Find the payment by searching its customer's email.
    browser.get(f"{live_server.url}/admin/payments/payment/")
    search = browser.find_element(By.ID, "searchbar")
    search.send_keys("e2e.buyer@example.com")
    search.submit()
    wait.until(EC.url_contains("q="))
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == 1
    assert payment.external_id in rows[0].text
    _shot(browser, "03-search")

    # Refund 30.00 through the action and its confirmation page.
    rows[0].find_element(By.CSS_SELECTOR, "input.action-select").click()
    Select(browser.find_element(By.NAME, "action")).select_by_value("refund_payments")
    browser.find_element(By.CSS_SELECTOR, "button[name=index], button.button[type=submit]").click()
    amount = browser.find_element(By.ID, "id_amount_0")
    assert amount.get_attribute("value") == "80.00"
    amount.clear()
    amount.send_keys("30.00")
    browser.find_element(By.ID, "id_reason").send_keys("e2e refund")
    _shot(browser, "04-confirm")
    browser.find_element(By.ID, "confirm-action").click()
    message = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "ul.messagelist li.success"))).text
    assert "refunded 30.00 USD" in message
    _shot(browser, "05-refunded")

    refund = Refund.objects.get(payment=payment)
    assert (refund.amount, refund.status, refund.reason) == (Decimal("30.00"), "succeeded", "e2e refund")
    stored = Payment.objects.get(pk=payment.pk)
    assert (stored.status, stored.refunded_amount) == ("partially_refunded", Decimal("30.00"))
    assert AuditLog.objects.filter(action="admin.payment.refund", actor_id=str(user.pk)).count() == 1

    # The dashboard, from the link on the index.
    browser.get(f"{live_server.url}/admin/")
    browser.find_element(By.ID, "dashboard-link").click()
    wait.until(EC.url_contains("/admin/dashboard/"))
    assert browser.find_element(By.CSS_SELECTOR, "#card-count .ep-value").text == "1"
    assert browser.find_element(By.CSS_SELECTOR, "#card-refunds .ep-value").text == "1"
    assert browser.find_elements(By.CSS_SELECTOR, "svg.ep-chart")
    _shot(browser, "06-dashboard")
