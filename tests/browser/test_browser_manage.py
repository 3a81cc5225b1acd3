"""Private bins, sharing, and the changes a user makes, seen in every open tab."""

from __future__ import annotations

import re

import pytest
import requests
from browsing import WAIT_MS, open_request, row, send
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def api(server, bin_: dict, path: str = "") -> str:
    return f"{server.url}/api/v1/bins/{bin_['id']}{path}"


def auth(bin_: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {bin_['read_key']}"}


def test_a_bin_page_without_its_key_is_locked_and_the_share_link_opens_it(page, bin_):
    page.goto(bin_["url"])
    expect(page.get_by_role("heading", name="This bin is private")).to_be_visible()
    expect(page.locator("#request-list")).to_have_count(0)

    page.goto(bin_["share_url"])

    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    assert page.url == bin_["url"], "the key must leave the address bar"
    page.locator("#share summary").click()
    expect(page.locator("#share-url")).to_have_value(bin_["share_url"])


def test_pin_and_delete_show_in_every_open_tab(page, bin_, open_bin):
    keep, drop = send(bin_, "/keep"), send(bin_, "/drop")
    open_bin(bin_)
    other = page.context.new_page()
    other.goto(bin_["url"])
    expect(other.locator("#live-status")).to_have_attribute("data-state", "live")
    page.bring_to_front()  # a background tab gets few animation frames, and clicks wait for them

    detail = open_request(page, keep)
    detail.get_by_role("button", name="Pin").click()
    expect(row(other, keep)).to_have_class(re.compile(r"\bpinned\b"), timeout=WAIT_MS)
    expect(detail.get_by_role("button", name="Unpin")).to_be_visible()

    detail = open_request(page, drop)
    detail.get_by_role("button", name="Delete").click()
    detail.get_by_role("button", name="Delete it?").click()
    expect(row(page, drop)).to_have_count(0, timeout=WAIT_MS)
    expect(row(other, drop)).to_have_count(0, timeout=WAIT_MS)
    expect(page.locator("#detail")).to_contain_text(f"Request #{drop} was deleted.")
    other.close()


def test_clear_keeps_pinned_requests(server, page, bin_, open_bin):
    pinned, *rest = [send(bin_, f"/n/{n}") for n in range(4)]
    requests.patch(
        api(server, bin_, f"/requests/{pinned}"),
        json={"pinned": True},
        headers=auth(bin_),
        timeout=5,
    )
    open_bin(bin_)
    expect(page.locator("#request-list li")).to_have_count(4)

    page.get_by_role("button", name="Clear").click()
    page.get_by_role("button", name="Clear all but pinned?").click()

    expect(page.locator("#request-list li")).to_have_count(1, timeout=WAIT_MS)
    expect(row(page, pinned)).to_be_visible()
    later = send(bin_, "/after-clear")
    expect(row(page, later)).to_be_visible(timeout=WAIT_MS)


def test_rename_and_delete_reach_other_tabs(page, bin_, open_bin):
    open_bin(bin_)
    other = page.context.new_page()
    other.goto(bin_["url"])
    expect(other.locator("#live-status")).to_have_attribute("data-state", "live")
    page.bring_to_front()  # a background tab gets few animation frames, and clicks wait for them

    page.get_by_role("button", name="Rename").click()
    page.get_by_label("Bin name").fill("<b>Stripe</b> staging")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#bin-name")).to_have_text("<b>Stripe</b> staging")
    expect(other.locator("#bin-name")).to_have_text("<b>Stripe</b> staging", timeout=WAIT_MS)

    page.get_by_role("button", name="Delete bin").click()
    page.get_by_role("button", name="Delete for good?").click()
    expect(page.locator("#notice")).to_contain_text("This bin was deleted")
    expect(other.locator("#notice")).to_contain_text("This bin was deleted", timeout=WAIT_MS)
    assert page.locator("b").count() == 0 and other.locator("b").count() == 0
    other.close()


def test_a_capture_refused_by_ingest_auth_is_listed_as_rejected(server, page, bin_, open_bin):
    requests.patch(
        api(server, bin_),
        json={"ingest_auth": {"type": "bearer", "token": "a-sender-token-123456"}},
        headers=auth(bin_),
        timeout=5,
    ).raise_for_status()
    open_bin(bin_)

    response = requests.post(bin_["capture_url"] + "/no-token", json={}, timeout=5)
    assert response.status_code == 401
    seq = int(response.headers["X-Hookscope-Seq"])

    expect(row(page, seq).locator(".row-answer")).to_have_text("401 rejected", timeout=WAIT_MS)
    expect(open_request(page, seq).locator(".overview")).to_contain_text("401, rejected")
