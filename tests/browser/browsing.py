"""Helpers for the browser tests: send captures to a bin, read what the page shows."""

from __future__ import annotations

import base64
import hashlib
import http.client
import re
import time
import uuid
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


class CspReports:
    """The CSP violation reports a server's log received from the moment this is made."""

    def __init__(self, server, deliberate_violations: list[str]) -> None:
        self.server = server
        self.deliberate_violations = deliberate_violations
        self.start = server.log_path.stat().st_size

    def lines(self) -> list[str]:
        """The report lines logged so far, in order."""
        logged = self.server.log_path.read_bytes()[self.start :].decode(errors="replace")
        return [line for line in logged.splitlines() if "] csp-report " in line]

    def violate(self, page) -> str:
        """Run an inline script the policy must block; wait for the server to log its report.

        The control for "no report arrived": it proves that on this page, at this moment, a
        violation does reach the server's log. Returns the report line.
        """
        marker = f"csp-control-{uuid.uuid4().hex[:12]}"
        # 'report-sample' puts the first 40 characters in the report: the marker comes first.
        source = f"/*{marker}*/document.title='ran'"
        digest = base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()
        self.deliberate_violations.append(f"sha256-{digest}")
        title = page.title()
        page.evaluate(
            """source => {
                const script = document.createElement("script");
                script.textContent = source;
                document.body.append(script);
            }""",
            source,
        )
        [line] = self.wait_for(marker)
        assert page.title() == title, "the policy let an inline script run"
        return line

    def wait_for(self, text: str) -> list[str]:
        """Wait until report lines containing ``text`` are logged, and return them."""
        deadline = time.monotonic() + WAIT_MS / 1000
        while not (found := [line for line in self.lines() if text in line]):
            assert time.monotonic() < deadline, f"no CSP report with {text!r} in the server log"
            time.sleep(0.05)
        return found
