"""A developer creates a bin and gets a capture URL to paste somewhere."""

from __future__ import annotations

import re

import pytest
from browsing import WAIT_MS, send
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_create_bin_lands_on_the_bin_page_with_its_capture_url(server, page):
    page.goto(server.url + "/")
    page.get_by_role("button", name="Create bin", exact=True).click()

    page.wait_for_url(re.compile(r"/bins/[a-z2-7]{26}$"))
    bin_id = page.url.rsplit("/", 1)[1]
    capture_url = f"{server.url}/h/{bin_id}"
    expect(page.locator("#capture-url")).to_be_visible()
    expect(page.locator("#capture-url")).to_have_value(capture_url)
    expect(page.locator("#curl-example")).to_have_value(re.compile(re.escape(capture_url) + "$"))
    expect(page.locator("#list-empty")).to_contain_text("Waiting for the first request")
    expect(page.locator("#list-empty")).to_contain_text(capture_url)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")


def test_copy_puts_the_capture_url_on_the_clipboard(page, bin_, open_bin):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    open_bin(bin_)

    page.get_by_role("button", name="Copy", exact=True).first.click()

    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == bin_["capture_url"]


def test_the_first_capture_replaces_the_empty_state(page, bin_, open_bin):
    open_bin(bin_)
    expect(page.locator("#list-empty")).to_be_visible()

    send(bin_, json={"hello": "world"})

    expect(page.locator("#request-list li")).to_have_count(1, timeout=WAIT_MS)
    expect(page.locator("#list-empty")).to_be_hidden()
