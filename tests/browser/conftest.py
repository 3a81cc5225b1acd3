"""Browser fixtures: Debian's Chromium driven by Playwright, against the real app under gunicorn."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from browsing import WAIT_MS, CspReports
from playwright.sync_api import sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _unavailable(reason: str) -> None:
    """Skip, or fail when CI says the browser tests must run (HOOKSCOPE_REQUIRE_BROWSER=1)."""
    if os.environ.get("HOOKSCOPE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}, and HOOKSCOPE_REQUIRE_BROWSER=1 requires the browser tests")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One headless Chromium for the session."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def dialogs() -> list[str]:
    """Messages of every alert/confirm/prompt the page opened (there should be none)."""
    return []


@pytest.fixture
def deliberate_violations() -> list[str]:
    """CSP breaches a test commits on purpose: each excuses one console error that contains it."""
    return []


def _csp_problem(text: str, deliberate_violations: list[str]) -> bool:
    """Tell whether a console error is a CSP violation nobody committed on purpose."""
    if "Content Security Policy" not in text:
        return False
    for expected in deliberate_violations:
        if expected in text:
            deliberate_violations.remove(expected)
            return False
    return True


@pytest.fixture
def traffic() -> list[str]:
    """Every URL the page requested, WebSocket connections included."""
    return []


@pytest.fixture
def page(browser, dialogs: list[str], deliberate_violations, traffic) -> Iterator[object]:
    """A fresh 1280x800 page; fails the test if the page throws or breaks its CSP."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"uncaught: {exc}"))
    page.on(
        "console",
        lambda msg: (
            problems.append(f"console: {msg.text}")
            if msg.type == "error" and _csp_problem(msg.text, deliberate_violations)
            else None
        ),
    )
    page.on("request", lambda request: traffic.append(request.url))
    page.on("websocket", lambda socket: traffic.append(socket.url))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    yield page
    context.close()
    assert not problems, f"the page reported errors: {problems}"


@pytest.fixture
def csp_reports(server, deliberate_violations) -> CspReports:
    """The CSP violation reports the shared server logs from now on."""
    return CspReports(server, deliberate_violations)


@pytest.fixture
def bin_(server) -> dict:
    """A new, empty bin on the shared server."""
    return server.create_bin()


@pytest.fixture
def open_bin(page) -> Callable[..., object]:
    """Open a bin's page (optionally at "#<seq>") with its key in the browser, and wait until live.

    The key goes in as a share link would put it (POST .../session sets the cookie), through the
    browser context's own request client, which shares its cookies; test_browser_manage follows
    a real share link.
    """

    def open_(bin_: dict, fragment: str = "") -> object:
        session_url = bin_["url"].replace("/bins/", "/api/v1/bins/") + "/session"
        response = page.context.request.post(
            session_url, headers={"Authorization": f"Bearer {bin_['read_key']}"}
        )
        assert response.ok, response.text()
        page.goto(bin_["url"] + fragment)
        page.locator("#live-status[data-state='live']").wait_for()
        return page

    return open_
