"""Hostile captures show as text, everywhere: nothing they carry becomes markup or runs.

Three witnesses for every view: the page itself (no element, dialog or script came from captured
data), the server (no CSP violation was reported, checked against a deliberate violation that
was), and the network (no request left for another origin).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
import requests
from browsing import WAIT_MS, open_request, row, send, send_raw
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(1)</script>"
# Would fetch from elsewhere if it ever became markup.
EXFIL = '<img src="http://203.0.113.7/leak.gif">'
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


def assert_nothing_reported_or_fetched(page, server, csp_reports, traffic):
    """The server heard of no CSP violation, and the page asked no other origin for anything."""
    control = csp_reports.violate(page)
    assert csp_reports.lines() == [control]
    origin = urlsplit(server.url).netloc
    assert traffic, "the page made no requests at all: nothing was watched"
    assert [url for url in traffic if urlsplit(url).netloc != origin] == []


def test_hostile_path_query_headers_and_body_show_literally(
    server, page, dialogs, bin_, open_bin, csp_reports, traffic
):
    open_bin(bin_)
    seq = send_raw(
        bin_,
        f"{PATH}?{QUERY}",
        headers={"X-Evil": IMG, "X-Script": SCRIPT, "X-Exfil": EXFIL, "Content-Type": "text/html"},
        body=f"{IMG}\n{SCRIPT}\n{EXFIL}".encode(),
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
    expect(headers.locator("tr", has_text="X-Exfil").locator("td")).to_have_text(EXFIL)
    query = detail.locator("table.query")
    expect(query.locator("tbody tr").nth(0).locator("td")).to_have_text(IMG)
    expect(query.locator("tbody tr").nth(1).locator("td")).to_have_text(SCRIPT)
    assert detail.locator(".body-text").text_content() == f"{IMG}\n{SCRIPT}\n{EXFIL}"
    assert IMG in detail.inner_text()
    assert_nothing_injected(page, dialogs)

    detail.get_by_role("tab", name="Raw").click()
    expect(detail.locator(".body-text")).to_have_text(f"{IMG}\n{SCRIPT}\n{EXFIL}")
    assert_nothing_injected(page, dialogs)
    assert_nothing_reported_or_fetched(page, server, csp_reports, traffic)


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
    server, page, dialogs, bin_, open_bin, csp_reports, traffic, kind, options
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
    assert_nothing_reported_or_fetched(page, server, csp_reports, traffic)


def test_a_hostile_bin_name_shows_literally_on_the_home_and_bin_pages(
    server, page, dialogs, bin_, open_bin, csp_reports, traffic
):
    name = f"{IMG}{SCRIPT}{EXFIL}"[:200]
    renamed = requests.patch(
        server.url + f"/api/v1/bins/{bin_['id']}", json={"name": name}, auth=server.auth, timeout=10
    )
    assert renamed.status_code == 200
    open_bin(bin_)
    expect(page.locator("#bin-name")).to_have_text(name)
    assert page.title().startswith(name)
    assert_nothing_injected(page, dialogs)

    page.goto(server.url + "/")
    expect(page.locator(".your-bin-name").first).to_have_text(name)
    assert_nothing_injected(page, dialogs)
    assert_nothing_reported_or_fetched(page, server, csp_reports, traffic)


def test_a_blocked_inline_script_reaches_the_servers_log(page, bin_, open_bin, csp_reports):
    """The positive control: a violation on the bin page is reported, with what was blocked."""
    open_bin(bin_)
    line = csp_reports.violate(page)
    assert "csp-report directive=script-src-elem blocked=inline" in line
    assert f"document={bin_['url']}" in line
    assert "sample=/*csp-control-" in line and "disposition=enforce" in line


def test_the_corpus_payload_as_markup_would_be_blocked_and_reported(
    page, dialogs, bin_, open_bin, csp_reports, deliberate_violations
):
    """If the page ever turned IMG into markup, its handler would not run and the server would know.

    Markup is injected here by the test itself (the page never does): this shows that the XSS
    tests' "nothing reported" is a real observation rather than a deaf ear.
    """
    open_bin(bin_)
    handler = "window.__xss=1"
    # Chromium's message for a blocked handler names no hash: excuse one such message.
    deliberate_violations.append("Executing inline event handler violates")
    page.evaluate(
        "markup => document.body.insertAdjacentHTML('beforeend', markup)",
        f'<img src="/static/favicon.svg#probe" onload="{handler}">',
    )
    # A function, not a bare expression: Playwright evals the expression's text in the page, and
    # only its first evaluation (inside DevTools' own call) escapes the CSP's ban on eval. A bare
    # expression is evaluated again on each later poll, so it failed whenever the image was late.
    page.wait_for_function("() => document.querySelector('img[onload]').complete")
    assert page.evaluate("window.__xss") is None
    [line] = csp_reports.wait_for("directive=script-src-attr")
    assert "blocked=inline" in line and f"sample={handler}" in line
    assert dialogs == []
