"""The back office's layout in a real browser, at 1,280 and 1,920 px: the admin index, the dashboard,
every changelist and a payment's page, with realistic data (several currencies, JPY among them, long
names and emails, every status). Screenshots go to tests/e2e/artifacts/layout/.

Fails when a changelist overflows horizontally (the page scrolls sideways, or the results table is
wider than its container), when an amount is not shown with its currency's digits, or when the
payment page's action buttons do not take staff through the confirmation page to the service.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from .chrome import ARTIFACTS, MARKS

pytestmark = MARKS

SHOTS = ARTIFACTS / "layout"
WIDTHS = (1280, 1920)
PASSWORD = "E2e-layout-Pass!"

OVERFLOW_JS = """
const doc = document.documentElement;
const table = document.getElementById('result_list');
const box = table ? table.parentElement : null;
return {
  docScroll: doc.scrollWidth, inner: window.innerWidth,
  table: table ? Math.ceil(Math.max(table.getBoundingClientRect().width, table.scrollWidth)) : null,
  container: box ? box.clientWidth : null,
  boxScroll: box ? box.scrollWidth : null,
  rows: table ? table.querySelectorAll('tbody tr').length : 0,
};
"""


def _viewport(driver, width: int, height: int = 1000) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )


def _full_shot(driver, name: str, width: int) -> None:
    """A screenshot of the whole page at this width (the viewport grown to the page's height)."""
    height = driver.execute_script("return Math.min(document.documentElement.scrollHeight, 4000)")
    _viewport(driver, width, max(height, 700))
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{width}-{name}.png"))
    _viewport(driver, width)


def _login(driver, live_server, username: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{live_server.url}/admin/login/?next=/admin/")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    driver.find_element(By.ID, "easypay-backoffice")


def _staff(username: str, group: str):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user(username=username, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.mark.django_db(transaction=True)
def test_back_office_layout_at_1280_and_1920(browser, live_server, anet_sandbox, settings):
    from django.contrib import admin
    from selenium.webdriver.common.by import By

    from audit.staff_groups import staff_groups_setup

    from .seed import seed_back_office

    settings.AUDIT_SYNC_WRITES = True
    staff_groups_setup()
    _staff("olivia", "admin")
    seeded = seed_back_office()
    jpy = next(p for p in seeded["payments"] if p.currency == "JPY" and p.amount == Decimal("129800"))
    _login(browser, live_server, "olivia")

    changelists = sorted(f"{m._meta.app_label}/{m._meta.model_name}" for m in admin.site._registry)
    overflow: list[str] = []
    for width in WIDTHS:
        _viewport(browser, width)
        browser.get(f"{live_server.url}/admin/")
        links = browser.find_elements(By.CSS_SELECTOR, "#easypay-backoffice a")
        assert len(links) == 2
        for link in links:  # the back-office links are readable, not a column one letter wide
            assert link.size["width"] > 60, (width, link.text, link.size)
        _full_shot(browser, "00-index", width)

        browser.get(f"{live_server.url}/admin/dashboard/")
        text = browser.find_element(By.ID, "content-main").text
        assert not re.search(r"\d+\.\d{3,}", text), text  # no 117.460000000000
        attention = browser.find_element(By.ID, "card-webhooks").text
        assert "2 overdue" in attention and "1 failed" in attention, attention
        _full_shot(browser, "01-dashboard", width)

        for index, name in enumerate(changelists, start=2):
            browser.get(f"{live_server.url}/admin/{name}/")
            m = browser.execute_script(OVERFLOW_JS)
            if m["docScroll"] > m["inner"]:
                overflow.append(f"{width}px {name}: page {m['docScroll']} > window {m['inner']}")
            if m["table"] is not None and max(m["table"], m["boxScroll"]) > m["container"]:
                overflow.append(
                    f"{width}px {name}: table {m['table']} (scrolls to {m['boxScroll']}) > container {m['container']}"
                )
            _full_shot(browser, f"{index:02d}-{name.replace('/', '-')}", width)

        browser.get(f"{live_server.url}/admin/payments/payment/")
        listing = browser.find_element(By.ID, "result_list").text
        assert "129800 JPY" in listing and "129800.00" not in listing
        assert "1234567.89 USD" in listing
        browser.get(f"{live_server.url}/admin/payments/payment/{jpy.pk}/change/")
        page = browser.find_element(By.ID, "content-main").text
        assert "129800 JPY" in page and "129800.00" not in page
        _full_shot(browser, "99-payment-jpy", width)
    assert not overflow, "\n".join(overflow)


@pytest.mark.django_db(transaction=True)
def test_payment_page_buttons_run_the_service(browser, live_server, anet_sandbox, settings, merchant):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    from audit.staff_groups import staff_groups_setup
    from payments.models import Payment, Refund
    from payments.services import payment_create

    settings.AUDIT_SYNC_WRITES = True
    staff_groups_setup()
    _staff("fred", "finance")
    payment = payment_create(
        merchant=merchant,
        is_test=True,
        amount=Decimal("3000"),
        currency="JPY",
        card_token="tok_visa",
        customer_id="cust_jp",
        customer_email="tanaka@example.jp",
    ).payment
    assert payment.status == "captured"
    wait = WebDriverWait(browser, 20)
    _login(browser, live_server, "fred")
    url = f"{live_server.url}/admin/payments/payment/{payment.pk}/change/"
    for width in WIDTHS:
        _viewport(browser, width)
        browser.get(url)
        buttons = {b.get_attribute("data-action") for b in browser.find_elements(By.CSS_SELECTOR, ".ep-payment-action")}
        assert buttons == {"refund_payments", "void_payments"}  # captured, not settled here: no capture
        _full_shot(browser, "98-payment-actions", width)

    browser.find_element(By.CSS_SELECTOR, ".ep-payment-action[data-action=refund_payments]").click()
    amount = wait.until(EC.presence_of_element_located((By.ID, "id_amount_0")))
    assert amount.get_attribute("value") == "3000"  # the JPY refundable amount, no decimals
    amount.clear()
    amount.send_keys("1200")
    browser.find_element(By.ID, "id_reason").send_keys("damaged in transit")
    _full_shot(browser, "98-payment-refund-confirm", WIDTHS[0])
    browser.find_element(By.ID, "confirm-action").click()
    message = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "ul.messagelist li.success"))).text
    assert "refunded 1200 JPY" in message
    assert browser.current_url.rstrip("/").endswith(f"/{payment.pk}/change")  # back on the payment's page
    _full_shot(browser, "98-payment-refunded", WIDTHS[0])

    refund = Refund.objects.get(payment=payment)
    assert (refund.amount, refund.status, refund.reason) == (Decimal("1200"), "succeeded", "damaged in transit")
    stored = Payment.objects.get(pk=payment.pk)
    assert (stored.status, stored.refunded_amount) == ("partially_refunded", Decimal("1200"))
    assert "1200 JPY" in browser.find_element(By.ID, "refunds-group").text
