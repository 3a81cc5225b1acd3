"""Captures appear live, newest first, and open into an exact, readable detail."""

from __future__ import annotations

import pytest
from browsing import WAIT_MS, open_request, row, send, shown_seqs
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

# Compact JSON with what a parse-and-stringify round trip would damage: a big integer, 1.0, an
# exponent, escapes, key order, and brackets inside a string.
SENT = (
    r'{"event":"charge.succeeded","big":12345678901234567890,"ratio":1.0,"exp":1E+2,'
    r'"text":"tab\t \"quoted\" \u00e9 {not: [structure]}","empty":{},'
    r'"list":[1,[],{"k":null}],"ok":true}'
)
PRETTY = r"""{
  "event": "charge.succeeded",
  "big": 12345678901234567890,
  "ratio": 1.0,
  "exp": 1E+2,
  "text": "tab\t \"quoted\" \u00e9 {not: [structure]}",
  "empty": {},
  "list": [
    1,
    [],
    {
      "k": null
    }
  ],
  "ok": true
}"""


def test_json_capture_appears_live_and_opens_pretty_printed_exactly(page, bin_, open_bin):
    open_bin(bin_)
    page.evaluate("window.notReloaded = true")

    seq = send(bin_, "/stripe/events", data=SENT, headers={"Content-Type": "application/json"})

    expect(row(page, seq)).to_be_visible(timeout=WAIT_MS)
    assert page.evaluate("window.notReloaded") is True
    expect(row(page, seq).locator(".method")).to_have_text("POST")
    expect(row(page, seq).locator(".row-target")).to_have_text("/stripe/events")
    expect(row(page, seq).locator(".row-seq")).to_have_text(f"#{seq}")

    detail = open_request(page, seq)
    assert page.url.endswith(f"#{seq}")
    pretty = detail.locator(".body-json")
    assert pretty.text_content() == PRETTY
    expect(pretty).to_contain_text("12345678901234567890")

    detail.get_by_role("tab", name="Raw").click()
    expect(detail.locator(".body-text")).to_have_text(SENT)


def test_new_captures_do_not_steal_the_selection(page, bin_, open_bin):
    first = send(bin_, "/first", json={"n": 1})
    open_bin(bin_)
    open_request(page, first)

    later = [send(bin_, f"/later/{n}", json={"n": n}) for n in range(3)]

    expect(row(page, later[-1])).to_be_visible(timeout=WAIT_MS)
    seqs = shown_seqs(page)
    assert seqs == sorted([first, *later], reverse=True)
    expect(row(page, first)).to_have_attribute("aria-current", "true")
    expect(page.locator("#request-list li[aria-current]")).to_have_count(1)
    expect(page.locator("#detail .detail")).to_have_attribute("data-seq", str(first))
    assert page.url.endswith(f"#{first}")


def test_a_link_to_a_request_opens_it_and_keys_move_between_requests(page, bin_, open_bin):
    seqs = [
        send(bin_, f"/n/{n}", data=f"body {n}", headers={"Content-Type": "text/plain"})
        for n in range(3)
    ]
    open_bin(bin_, f"#{seqs[1]}")

    expect(page.locator("#detail .detail")).to_have_attribute("data-seq", str(seqs[1]))
    expect(row(page, seqs[1])).to_have_attribute("aria-current", "true")
    expect(page.locator("#detail .body-text")).to_have_text("body 1")

    page.keyboard.press("j")  # the next older request
    expect(page.locator("#detail .detail")).to_have_attribute("data-seq", str(seqs[0]))
    page.keyboard.press("k")
    expect(page.locator("#detail .detail")).to_have_attribute("data-seq", str(seqs[1]))
    page.keyboard.press("k")
    expect(page.locator("#detail .detail")).to_have_attribute("data-seq", str(seqs[2]))
    assert page.url.endswith(f"#{seqs[2]}")
