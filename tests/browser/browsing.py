"""Helpers for the browser tests: send captures to a bin, read what the page shows."""

from __future__ import annotations

import http.client
import re
from urllib.parse import urlsplit

import requests

# Long enough for a loaded CI machine, short enough that a broken page fails fast.
WAIT_MS = 5000


def _check_loopback(url: str) -> None:
    assert re.match(r"http://127\.0\.0\.1:\d+/", url), f"captures go to loopback only: {url}"


def send(bin_: dict, path: str = "", method: str = "POST", **kwargs) -> int:
    """Send a request to the bin's capture URL with requests and return its seq."""
    url = bin_["capture_url"] + path
    _check_loopback(url)
    response = requests.request(method, url, timeout=10, **kwargs)
    assert response.status_code < 400, response.text
    return int(response.headers["X-Hookscope-Seq"])


def send_raw(
    bin_: dict,
    target: str,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> int:
    """Send a request whose target goes on the wire as given (requests would re-quote it)."""
    url = bin_["capture_url"]
    _check_loopback(url)
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(method, parts.path + target, body=body, headers=headers or {})
        response = conn.getresponse()
        text = response.read().decode(errors="replace")
        assert response.status < 400, text
        return int(response.getheader("X-Hookscope-Seq"))
    finally:
        conn.close()


def shown_seqs(page) -> list[int]:
    """The seqs of the list's rows, top to bottom."""
    return page.locator("#request-list li").evaluate_all("rows => rows.map(r => +r.dataset.seq)")


def row(page, seq: int):
    """The list row for one seq."""
    return page.locator(f"#request-list li[data-seq='{seq}']")


def open_request(page, seq: int):
    """Click a request's row and wait until its detail and body are shown; return the detail."""
    row(page, seq).click()
    detail = page.locator(f"#detail .detail[data-seq='{seq}']")
    detail.locator(".body-view").wait_for()
    return detail
