"""Browser tests: headless Debian Chromium driven by Selenium against pytest-django's ``live_server``."""

from __future__ import annotations

import pytest


def pytest_configure(config):
    # Registered here too so the marker is known under --strict-markers even before pytest.ini lists it.
    config.addinivalue_line("markers", "e2e: browser end-to-end test (headless Chromium + chromedriver + selenium)")


@pytest.fixture
def browser():
    from .chrome import start_browser, stop_browser

    driver, profile = start_browser()
    try:
        yield driver
    finally:
        stop_browser(driver, profile)
