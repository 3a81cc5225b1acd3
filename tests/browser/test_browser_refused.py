"""The bin page says when senders were refused, how many and why, and which setting to raise.

A real gunicorn with a low per-bin limit, real captures past it, and the page told by the live
stream's refused event.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import requests
from harness import Gunicorn
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

# Each server process adds its counts every 2 s; then the page is told and reads them.
COUNTED_MS = 15_000
# Where to keep screenshots of the notice for people to look at (optional).
SHOTS = os.environ.get("HOOKSCOPE_TEST_SCREENSHOTS", "")


@pytest.fixture
def limited_server(tmp_path):
    env = {
        "HOOKSCOPE_RATE_LIMITS": "true",
        "HOOKSCOPE_RATE_LIMIT_PER_BIN": "1/hour burst 3",
        "HOOKSCOPE_RATE_LIMIT_PER_ADDRESS": "off",
    }
    server = Gunicorn(tmp_path, env=env).start()
    yield server
    server.stop(signal.SIGINT)  # a graceful stop would wait for the page's open WebSocket


def flood(bin_: dict, count: int) -> list[int]:
    with requests.Session() as session:
        return [
            session.post(bin_["capture_url"], data=b"{}", timeout=10).status_code
            for _ in range(count)
        ]


def shoot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"))


def test_the_bin_page_shows_refused_requests_and_what_to_raise(limited_server, page):
    bin_ = limited_server.create_bin()
    page.goto(bin_["share_url"])
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    notice = page.locator("#refused-notice")
    expect(notice).to_be_hidden()  # nothing refused: nothing to say

    assert flood(bin_, 10) == [200] * 3 + [429] * 7
    expect(notice).to_be_visible(timeout=COUNTED_MS)
    line = notice.locator("li[data-reason='rate_limit_bin']")
    expect(line).to_have_text(
        "7 requests refused by the per-bin limit in the last hour:"
        " raise HOOKSCOPE_RATE_LIMIT_PER_BIN"
    )
    expect(line.locator("code")).to_have_text("HOOKSCOPE_RATE_LIMIT_PER_BIN")
    expect(page.locator("#request-list li")).to_have_count(3)  # the stored ones, as ever
    shoot(page, "refused-light")
    page.emulate_media(color_scheme="dark")
    shoot(page, "refused-dark")
    page.emulate_media(color_scheme="light")

    # Dismissed, it stays away on reload, and comes back when more are refused.
    page.locator("#refused-dismiss").click()
    expect(notice).to_be_hidden()
    page.reload()
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    page.wait_for_load_state("networkidle")
    expect(notice).to_be_hidden()
    assert flood(bin_, 2) == [429, 429]
    expect(line).to_contain_text("9 requests refused", timeout=COUNTED_MS)
    expect(notice).to_be_visible()


def test_a_fresh_page_shows_what_was_refused_before_it_opened(limited_server, page):
    bin_ = limited_server.create_bin()
    assert flood(bin_, 4) == [200] * 3 + [429]
    # Opened once the count is stored (within a flush), the page reads it as it loads.
    owner = {"Authorization": f"Bearer {bin_['read_key']}"}
    usage_url = bin_["url"].replace("/bins/", "/api/v1/bins/") + "/usage"
    import time

    deadline = time.monotonic() + COUNTED_MS / 1000
    while requests.get(usage_url, headers=owner, timeout=10).json()["refused"]["last_hour"] < 1:
        assert time.monotonic() < deadline, "the refusal was never counted"
        time.sleep(0.2)
    page.goto(bin_["share_url"])
    expect(page.locator("#refused-notice li")).to_have_text(
        "1 request refused by the per-bin limit in the last hour:"
        " raise HOOKSCOPE_RATE_LIMIT_PER_BIN"
    )
