"""The documentation site: `mkdocs build --strict` passes (no broken link, missing page or unreadable docstring), and
in headless Chromium every page is reachable from the navigation, has a title and is not a 404, and the API
reference shows the classes the package exports."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urldefrag, urljoin

import pytest

from tests.browser import headless_chromium

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site built from mkdocs.yml into a temporary folder, as `make docs` builds it."""
    for module in ("mkdocs", "material", "mkdocstrings_handlers.python"):
        pytest.importorskip(module, reason="the docs test needs the docs extra: pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out), "-f", str(ROOT / "mkdocs.yml")]
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"mkdocs build --strict failed (rc {proc.returncode}):\n{proc.stderr}{proc.stdout}"
    return out


@pytest.fixture(scope="module")
def browser():
    yield from headless_chromium()


@pytest.fixture(scope="module")
def url(site):
    """The built site over http on a free loopback port (a plain http.server in a background thread)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def nav_pages(driver, home: str) -> list[str]:
    """Every page the navigation links to (tabs and the full navigation tree), in order, without fragments."""
    driver.get(home)
    selector = "a.md-tabs__link, nav.md-nav--primary a.md-nav__link"
    hrefs = driver.execute_script(f"return Array.from(document.querySelectorAll('{selector}'), a => a.href)")
    pages: list[str] = []
    for href in hrefs:
        if href:
            page = urldefrag(urljoin(home, href)).url
            if page.startswith(home) and page not in pages:
                pages.append(page)
    return pages


def test_site_builds_with_strict(site):
    assert (site / "index.html").is_file()
    assert (site / "reference" / "losses.html").is_file()


def test_every_page_is_reachable_from_the_navigation(browser, url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    expected = {f"{url}guides/{p.stem}.html" for p in (ROOT / "docs" / "guides").glob("*.md")}
    expected |= {f"{url}reference/{p.stem}.html" for p in (ROOT / "docs" / "reference").glob("*.md")}
    deadline = time.time() + 30
    while expected - set(pages := nav_pages(browser, url)) and time.time() < deadline:  # a page read mid-load
        time.sleep(0.5)  # under a busy machine (CI once saw part of the navigation) is read again
    assert expected - set(pages) == set(), "pages missing from the navigation"
    for page in pages:
        browser.get(page)
        WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.TAG_NAME, "h1"))  # a slow load is not a miss
        headings = [h.text for h in browser.find_elements(By.TAG_NAME, "h1")]
        assert headings and headings[0].strip(), f"{page}: no h1"
        assert not any("404" in h or "Not found" in h for h in headings), f"{page}: {headings}"
        assert "Error response" not in browser.title, f"{page}: {browser.title}"


def test_the_losses_reference_shows_the_exported_classes(browser, url):
    from selenium.webdriver.common.by import By

    import contrastkit.losses

    browser.get(f"{url}reference/losses.html")
    text = browser.find_element(By.CSS_SELECTOR, "article").text
    for name in contrastkit.losses.__all__:
        assert name in text, f"{name} is not on the losses reference page"
    heading = browser.find_element(By.ID, "contrastkit.losses.InfoNCELoss")
    assert "InfoNCELoss" in heading.text
    assert "temperature" in text  # its docstring, not just its name
