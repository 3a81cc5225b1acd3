"""Hostile captures show as text, everywhere: nothing they carry becomes markup or runs."""

from __future__ import annotations

import json

import pytest
from browsing import WAIT_MS, open_request, row, send, send_raw
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(1)</script>"
# A request line cannot hold spaces, so the path carries space-free payloads.
SVG = "<svg/onload=alert(1)>"
PATH = f"/{SCRIPT}/{SVG}"
QUERY = "q=<img%20src=x%20onerror=alert(1)>&s=<script>alert(1)</script>"


def assert_nothing_injected(page, dialogs):
    """No dialog opened, and no element came from captured data."""
    assert dialogs == []
    assert page.locator("img[src='x'], svg, iframe, object, embed").count() == 0
    assert page.locator("img").count() == 1  # the logo
    assert page.evaluate(
        "[...document.scripts].every(s => s.src.startsWith(location.origin + '/static/'))"
    )
    assert page.locator("#request-list script, #detail script, [onerror], [onload]").count() == 0


def test_hostile_path_query_headers_and_body_show_literally(page, dialogs, bin_, open_bin):
    open_bin(bin_)
    seq = send_raw(
        bin_,
        f"{PATH}?{QUERY}",
        headers={"X-Evil": IMG, "X-Script": SCRIPT, "Content-Type": "text/html"},
        body=f"{IMG}\n{SCRIPT}".encode(),
    )

    target = row(page, seq).locator(".row-target")
    expect(target).to_have_text(f"{PATH}?{QUERY}", timeout=WAIT_MS)
    assert target.get_attribute("title") == f"{PATH}?{QUERY}"
    assert_nothing_injected(page, dialogs)

    detail = open_request(page, seq)
    expect(detail.locator(".detail-target")).to_have_text(f"{PATH}?{QUERY}")
    headers = detail.locator("table.headers")
    expect(headers.locator("tr", has_text="X-Evil").locator("td")).to_have_text(IMG)
    expect(headers.locator("tr", has_text="X-Script").locator("td")).to_have_text(SCRIPT)
    query = detail.locator("table.query")
    expect(query.locator("tbody tr").nth(0).locator("td")).to_have_text(IMG)
    expect(query.locator("tbody tr").nth(1).locator("td")).to_have_text(SCRIPT)
    assert detail.locator(".body-text").text_content() == f"{IMG}\n{SCRIPT}"
    assert IMG in detail.inner_text()
    assert_nothing_injected(page, dialogs)

    detail.get_by_role("tab", name="Raw").click()
    expect(detail.locator(".body-text")).to_have_text(f"{IMG}\n{SCRIPT}")
    assert_nothing_injected(page, dialogs)


@pytest.mark.parametrize(
    "kind, options",
    [
        (
            "json",
            {
                "data": json.dumps({IMG: SCRIPT, "list": [IMG]}),
                "headers": {"Content-Type": "application/json"},
            },
        ),
        # Sent unencoded, as a careless or hostile sender would: the raw view shows it as is.
        (
            "form",
            {
                "data": f"{IMG}={SCRIPT}&field={IMG}",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
        ),
        (
            "multipart",
            {"data": {SCRIPT: IMG}, "files": {IMG: (f"{IMG}.txt", b"file text", "text/plain")}},
        ),
        (
            "text",
            {
                "data": f"{SCRIPT}{IMG}".encode(),
                "headers": {"Content-Type": f"text/plain; x={SCRIPT}"},
            },
        ),
    ],
)
def test_hostile_bodies_show_literally_in_every_renderer(
    page, dialogs, bin_, open_bin, kind, options
):
    open_bin(bin_)
    seq = send(bin_, f"/{kind}", **options)

    detail = open_request(page, seq)
    body = detail.locator(".section[data-section='body']")
    text = body.text_content()
    assert IMG in text and SCRIPT in text
    assert_nothing_injected(page, dialogs)
    detail.get_by_role("tab", name="Raw").click()
    expect(body.locator(".body-pre")).to_contain_text(IMG)
    assert_nothing_injected(page, dialogs)
