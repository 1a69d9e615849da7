"""`contrastkit serve`'s page as a person uses it, in headless Chromium driven by Selenium: type a query and see
results, upload an image and see its neighbours with thumbnails, click a result for more like it; with a token, the
page asks for it, or takes it from its address's fragment, and everything (thumbnails included) works with it."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from tests.browser import headless_chromium
from tests.index.test_search_service import TEXTS, image_index, text_index  # noqa: F401  (fixtures)


@pytest.fixture(scope="module")
def browser():
    yield from headless_chromium()


def serving(index, token: str | None = None):
    """The app on a free local port in a background thread (uvicorn, as `contrastkit serve` runs it), guarded by
    ``token`` when given."""
    import uvicorn

    from contrastkit.index.search_service import SearchService, create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(SearchService(index), token=token)
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started, "the server did not start"
    return server, f"http://127.0.0.1:{port}/"


def results(driver, count: int | None = None, timeout: float = 30) -> list[str]:
    """The ids shown in the grid, once it holds ``count`` results (or any)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def shown(d):
        # the texts are read inside the wait: the page replaces the grid when a new query answers, and a card read
        # after that is stale (retried here, not a failure)
        texts = [a.text for a in d.find_elements(By.CSS_SELECTOR, "#results .result a")]
        return texts if texts and (count is None or len(texts) == count) else False

    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(shown)


def test_typing_a_query_shows_ranked_results(browser, text_index):  # noqa: F811
    from selenium.webdriver.common.by import By

    server, url = serving(text_index)
    try:
        browser.get(url)
        box = browser.find_element(By.ID, "text")
        box.send_keys("combine two dicts into one")
        browser.find_element(By.ID, "k").clear()
        browser.find_element(By.ID, "k").send_keys("3")
        browser.find_element(By.ID, "go").click()
        shown = results(browser, 3)
        assert shown[0] == TEXTS[4]
        scores = [float(s.text.split()[1]) for s in browser.find_elements(By.CSS_SELECTOR, "#results .score")]
        assert scores == sorted(scores, reverse=True)
        assert not browser.find_element(By.ID, "drop").is_displayed()  # a text-only index takes no images
        box.clear()
        box.send_keys("   ")
        browser.find_element(By.ID, "go").click()
        deadline = time.time() + 10
        while "empty" not in browser.find_element(By.ID, "error").text and time.time() < deadline:
            time.sleep(0.1)
        assert "text is empty" in browser.find_element(By.ID, "error").text
    finally:
        server.should_exit = True


def test_uploading_an_image_shows_its_neighbours_with_thumbnails(browser, image_index):  # noqa: F811
    from selenium.webdriver.common.by import By

    index, folder = image_index
    server, url = serving(index)
    try:
        browser.get(url)
        browser.find_element(By.ID, "k").clear()
        browser.find_element(By.ID, "k").send_keys("5")
        browser.find_element(By.ID, "file").send_keys(str(folder / "img07.png"))
        shown = results(browser, 5)
        assert shown[0].endswith("img07.png")
        first = browser.find_elements(By.CSS_SELECTOR, "#results img")[0]  # the query image itself, from the root
        deadline = time.time() + 10
        while not browser.execute_script("return arguments[0].naturalWidth", first):
            assert time.time() < deadline, "the thumbnail did not load"
            time.sleep(0.1)
        assert browser.execute_script("return arguments[0].naturalWidth", first) == 12  # the 12-pixel image
        browser.find_elements(By.CSS_SELECTOR, "#results .result a")[1].click()  # more like the second result
        second, deadline = shown[1], time.time() + 30
        while second in (now := results(browser)) and time.time() < deadline:
            time.sleep(0.1)
        assert second not in now and len(now) == 5  # its neighbours, itself left out
    finally:
        server.should_exit = True


def wait_for(condition, timeout: float = 10) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "the page did not get there"
        time.sleep(0.1)


def test_the_page_works_with_a_token(browser, image_index):  # noqa: F811
    from selenium.webdriver.common.by import By

    index, folder = image_index
    token = "page-token_0123456789"
    server, url = serving(index, token)
    try:
        browser.get(url)  # no token yet: the service answers 401 and the page asks for it
        form = browser.find_element(By.ID, "token-form")
        wait_for(form.is_displayed)
        assert "needs a token" in browser.find_element(By.ID, "error").text
        browser.find_element(By.ID, "token").send_keys("wrong-token-123")
        browser.find_element(By.ID, "token-go").click()
        wait_for(lambda: "wrong token" in browser.find_element(By.ID, "error").text)
        browser.find_element(By.ID, "token").clear()
        browser.find_element(By.ID, "token").send_keys(token)
        browser.find_element(By.ID, "token-go").click()
        wait_for(lambda: "21 vectors" in browser.find_element(By.ID, "status").text)
        assert not form.is_displayed()

        forget = "sessionStorage.clear(); document.cookie = 'contrastkit_token=; path=/thumbnail; max-age=0'"
        browser.execute_script(forget)
        browser.get("about:blank")
        browser.get(url + "#token=" + token)  # a fresh visit by a link that carries the token in its fragment
        wait_for(lambda: "21 vectors" in browser.find_element(By.ID, "status").text)
        assert "token" not in browser.current_url  # taken out of the address bar
        browser.find_element(By.ID, "k").clear()
        browser.find_element(By.ID, "k").send_keys("4")
        browser.find_element(By.ID, "file").send_keys(str(folder / "img07.png"))
        shown = results(browser, 4)
        assert shown[0].endswith("img07.png")
        first = browser.find_elements(By.CSS_SELECTOR, "#results img")[0]  # fetched by <img>: the cookie's token
        wait_for(lambda: browser.execute_script("return arguments[0].naturalWidth", first) == 12)
        browser.find_elements(By.CSS_SELECTOR, "#results .result a")[1].click()
        wait_for(lambda: shown[1] not in results(browser, 4))
    finally:
        server.should_exit = True
