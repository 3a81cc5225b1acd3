"""The bin's answers on its page: edit them with the keyboard, see refusals next to the field,
send a capture, and see in its detail what it was answered."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import requests
from browsing import WAIT_MS, open_request, row
from playwright.sync_api import expect

pytestmark = pytest.mark.browser
# Where the screenshots go, to look at them (HOOKSCOPE_SCREENSHOTS=dir); none when unset.
SHOTS = os.environ.get("HOOKSCOPE_SCREENSHOTS")


def shoot(page, name: str, element=None) -> None:
    if SHOTS:
        target = element or page
        target.screenshot(path=str(Path(SHOTS) / f"{name}.png"))


def type_into(page, locator, text: str) -> None:
    """Focus a field and type, as a keyboard user would (select what is there first)."""
    locator.focus()
    page.keyboard.press("Control+A")
    page.keyboard.type(text)


def test_edit_the_response_send_a_capture_and_see_the_answer(page, bin_, open_bin):
    open_bin(bin_)
    glance = page.locator("#answers-glance")
    expect(glance).to_have_text("200 ok (default) · handshakes on")

    # Keyboard only: the button, the checkbox, the fields, Enter to save.
    page.locator("#answers-edit").focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="What this bin answers")
    expect(dialog).to_be_visible()
    custom = dialog.get_by_label("Send a custom response")
    custom.focus()
    page.keyboard.press("Space")
    response = dialog.locator("[data-field='response']")
    type_into(page, response.get_by_label("Status", exact=True), "201")
    response.get_by_role("button", name="Add header").focus()
    page.keyboard.press("Enter")
    page.keyboard.type("Set-Cookie")  # focus moved to the new header's name
    page.keyboard.press("Tab")
    page.keyboard.type("{{ method }}")
    type_into(page, response.get_by_label("Body", exact=True), "created {{ seq }}")
    shoot(page, "answers-editor")
    response.get_by_label("Status", exact=True).focus()
    page.keyboard.press("Enter")  # submits the form

    # Refused: said next to the header, which has focus; nothing saved.
    problem = dialog.locator(".af-error")
    expect(problem).to_contain_text("Set-Cookie cannot be set")
    header_name = dialog.locator("[data-field='response.headers[0]'] input").first
    expect(header_name).to_be_focused()
    expect(header_name).to_have_attribute("aria-invalid", "true")
    expect(dialog.locator("#answers-problem")).to_have_text(
        "Not saved: response.headers[0] is marked below."
    )
    shoot(page, "answers-refused")
    page.keyboard.press("Control+A")
    page.keyboard.type("X-Hook")
    page.keyboard.press("Enter")

    expect(dialog).to_be_hidden()
    expect(glance).to_have_text("201 · handshakes on")
    shoot(page, "answers-glance", page.locator(".bin-head"))

    sent = requests.post(bin_["capture_url"] + "/orders", json={"id": 7}, timeout=10)
    assert (sent.status_code, sent.text, sent.headers["X-Hook"]) == (201, "created 1", "POST")
    expect(row(page, 1)).to_contain_text("201")
    detail = open_request(page, 1)
    answer = detail.locator("details[data-section='answer']")
    expect(answer).to_contain_text("201")
    expect(answer).to_contain_text("the bin's response")
    expect(answer.locator("table.headers")).to_contain_text("X-Hook")
    expect(answer.locator("table.headers")).to_contain_text("POST")
    expect(answer.locator("table.headers")).to_contain_text("sandbox")
    expect(answer.locator(".answer-body")).to_have_text("created 1")
    expect(answer.locator("dd").nth(2)).to_have_text(re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"))
    expect(detail.locator(".overview")).to_contain_text("201, by the bin's response")
    answer.scroll_into_view_if_needed()
    shoot(page, "answers-detail")


def test_a_rule_refused_shows_its_message_at_its_condition(page, bin_, open_bin):
    open_bin(bin_)
    page.locator("#answers-edit").click()
    dialog = page.get_by_role("dialog", name="What this bin answers")
    dialog.get_by_role("button", name="Add rule").click()
    rule = dialog.locator("fieldset.af-rule").first
    expect(rule.locator("legend").first).to_have_text("Rule 1")
    condition = rule.locator(".af-condition").first
    condition.locator("input").nth(1).fill("no-slash")  # a path glob must start with /
    dialog.get_by_role("button", name="Save").click()
    expect(rule.locator(".af-error")).to_contain_text("rules[0].when[0].path")
    expect(condition.locator("input").nth(1)).to_be_focused()
    condition.locator("input").nth(1).fill("/stripe/*")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    glance = page.locator("#answers-glance")
    expect(glance).to_have_text("200 ok (default) · 1 rule · handshakes on")


def test_retries_of_one_delivery_list_together(server, page, bin_, open_bin):
    rehearsal = {"first": 2, "per_header": "X-Delivery", "status": 503}
    changed = requests.patch(
        f"{server.url}/api/v1/bins/{bin_['id']}",
        json={"response": {"status": 200, "failure": rehearsal}},
        headers={"Authorization": f"Bearer {bin_['read_key']}"},
        timeout=10,
    )
    assert changed.status_code == 200
    for delivery in ("evt-a", "evt-b", "evt-a", "evt-a"):
        requests.post(bin_["capture_url"], headers={"X-Delivery": delivery}, timeout=10)
    open_bin(bin_)
    glance = page.locator("#answers-glance")
    expect(glance).to_contain_text("first 2 fail (per X-Delivery) with 503")
    expect(row(page, 1)).to_contain_text("503")
    expect(row(page, 1)).to_contain_text("evt-a")
    detail = open_request(page, 1)
    detail.get_by_role("button", name="Show every try of it").click()
    expect(page.locator("#delivery-filter")).to_contain_text("Every try of delivery evt-a")
    expect(page.locator("#request-list li")).to_have_count(3, timeout=WAIT_MS)
    shoot(page, "answers-delivery")
    assert "delivery=evt-a" in page.url
    page.get_by_role("button", name="Show all requests").click()
    expect(page.locator("#request-list li")).to_have_count(4, timeout=WAIT_MS)
    requests.post(bin_["capture_url"], headers={"X-Delivery": "evt-c"}, timeout=10)
    expect(page.locator("#request-list li")).to_have_count(5, timeout=WAIT_MS)
