"""Replay from the page, edit and replay, copy as cURL, the attempts each leaves."""

from __future__ import annotations

import shlex
import subprocess

import pytest
from browsing import send
from harness import Gunicorn
from http_recorder import Recorder
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server that may send to 127.0.0.1, as on a developer's laptop."""
    env = {"HOOKSCOPE_OUTBOUND_ALLOW": "127.0.0.1/32"}
    with Gunicorn(tmp_path_factory.mktemp("replay-browser"), env) as running:
        yield running


@pytest.fixture
def target():
    with Recorder("127.0.0.1") as recorder:
        yield recorder


def test_replay_from_the_page_shows_the_attempt_and_remembers_the_target(
    page, bin_, open_bin, target
):
    seq = send(
        bin_, "/stripe", data=b'{"id": "evt_1"}', headers={"Content-Type": "application/json"}
    )
    open_bin(bin_, f"#{seq}")

    page.locator("#replay-open").click()
    page.locator("#replay-url").fill(target.url + "/webhooks")
    page.locator("#replay-send").click()

    expect(page.locator("#replay-result")).to_have_text("Answered 200 X")
    attempt = page.locator(".attempt").first
    expect(attempt.locator(".attempt-outcome")).to_have_text("200 X")
    expect(attempt.locator(".attempt-kind")).to_have_text("Replay")
    assert target.requests[0].target == b"/webhooks"
    assert target.requests[0].body == b'{"id": "evt_1"}'
    # The next request offers the same target first.
    other = send(bin_, "/other", data=b"x")
    page.goto(f"{bin_['url']}#{other}")
    page.locator("#replay-open").click()
    expect(page.locator("#replay-url")).to_have_value(target.url + "/webhooks")


def test_edit_and_replay_sends_the_edited_headers_and_body(page, bin_, open_bin, target):
    seq = send(bin_, data=b"original", headers={"X-Keep": "1", "Content-Type": "text/plain"})
    open_bin(bin_, f"#{seq}")

    page.locator("#replay-edit-open").click()
    page.locator("#replay-url").fill(target.url)
    expect(page.locator("#edit-body")).to_have_value("original")
    page.locator("#edit-method").fill("PUT")
    headers = page.locator("#edit-headers").input_value()
    page.locator("#edit-headers").fill(headers + "\nX-Added: yes")
    page.locator("#edit-body").fill('{"edited": true}')
    page.locator("#replay-send").click()

    expect(page.locator(".attempt .attempt-kind").first).to_have_text("Replay · edited")
    (got,) = target.requests
    assert got.method == b"PUT"
    assert got.body == b'{"edited": true}'
    assert got.header(b"X-Added") == b"yes"
    assert got.header(b"X-Keep") == b"1"


def test_copy_as_curl_sends_the_capture_again(page, bin_, open_bin, target):
    body = b'{"a": "it\'s $(here)"}'
    seq = send(bin_, data=body, headers={"Content-Type": "application/json", "X-Sig": "v1=abc"})
    open_bin(bin_, f"#{seq}")

    page.locator("#copy-as-open").click()
    code = page.locator("#copy-as-code")
    expect(code).not_to_have_value("Loading…")
    command = code.input_value()
    assert command.startswith("curl ")
    # Point it at the local target and run it as the user would, in bash.
    command = command.replace(bin_["capture_url"], target.url + "/again", 1)
    done = subprocess.run(["bash", "-c", command], capture_output=True, timeout=30, check=False)

    assert done.returncode == 0, done.stderr
    (got,) = target.requests
    assert got.body == body
    assert got.header(b"X-Sig") == b"v1=abc"
    assert shlex.split(command)[0] == "curl"


def test_bulk_replay_sends_every_match_in_order(page, bin_, open_bin, target):
    seqs = [send(bin_, f"/{word}", data=word.encode()) for word in ("alpha", "beta", "alpha2")]
    open_bin(bin_)
    page.locator("#search-input").fill("alpha*")
    page.locator("#search-input").press("Enter")
    expect(page.locator("#request-list li")).to_have_count(2)

    page.locator("#bulk-open").click()
    page.locator("#bulk-url").fill(target.url)
    page.locator("#bulk-start").click()

    expect(page.locator("#bulk-progress")).to_have_text("Sent 2 of 2 · done")
    assert [r.body for r in target.requests] == [b"alpha", b"alpha2"]
    assert seqs
