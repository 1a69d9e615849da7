"""Headless Chromium driven by Selenium, for the tests that use a page as a person does (the search service's page,
the documentation site)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

INSTALL = "install Debian's chromium and chromium-driver (`make test` does it as root)"


def headless_chromium(width: int = 1400, height: int = 1000) -> Iterator:
    """A Selenium driver of headless Chromium, for a fixture to ``yield from`` (quit afterwards); the test skips,
    saying how to install them, where Chromium or its driver is missing."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="the browser test needs selenium (the test extra)")
    if shutil.which("chromium") is None or shutil.which("chromedriver") is None:
        print(f"chromium or chromedriver not found: {INSTALL}")
        pytest.skip(f"the browser test needs chromium and chromedriver: {INSTALL}")
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium")
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(60)
    driver.set_window_size(width, height)  # wide enough for a site's navigation tabs
    yield driver
    driver.quit()
