"""Headless Debian Chromium for the browser tests: where it is, the skip markers, a driver factory.

Nothing is downloaded at run time (no Selenium Manager, no browser fetch).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

try:
    import selenium  # noqa: F401

    HAVE_SELENIUM = True
except ImportError:
    HAVE_SELENIUM = False

MARKS = [
    pytest.mark.e2e,
    pytest.mark.skipif(not HAVE_SELENIUM, reason="selenium is not installed (pip install -r requirements-dev.txt)"),
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER),
        reason="Debian's chromium and chromium-driver are not installed (apt-get install -y chromium chromium-driver)",
    ),
]

CHROME_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1400,1000",
)


def start_browser():
    """A headless Chromium driven by Debian's chromedriver, with a throw-away profile; returns
    ``(driver, profile_dir)``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never go online
    profile = tempfile.mkdtemp(prefix="easypay-e2e-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.implicitly_wait(5)
    return driver, profile


def stop_browser(driver, profile: str) -> None:
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)
