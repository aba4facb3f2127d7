"""Browser tests: headless Debian Chromium driven by Selenium against pytest-django's ``live_server``."""

from __future__ import annotations


def pytest_configure(config):
    # Registered here too so the marker is known under --strict-markers even before pytest.ini lists it.
    config.addinivalue_line("markers", "e2e: browser end-to-end test (headless Chromium + chromedriver + selenium)")
