"""The page of a fixed bin offers only what the server will do, and says why the rest is gone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browsing import open_request, send
from harness import Gunicorn
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

KEY = "ci-pipeline-read-key-0123456789"


@pytest.fixture(scope="module")
def fixed_server(tmp_path_factory) -> Iterator[Gunicorn]:
    """A server whose operator declared a public bin and one with a read key."""
    env = {"HOOKSCOPE_FIXED_BINS": f"public-demo,ci-fixed:{KEY}"}
    with Gunicorn(tmp_path_factory.mktemp("fixed"), env=env) as server:
        yield server


def bin_of(server: Gunicorn, bin_id: str) -> dict:
    return {
        "id": bin_id,
        "url": f"{server.url}/bins/{bin_id}",
        "capture_url": f"{server.url}/h/{bin_id}",
    }


def test_a_public_bin_offers_no_changes_and_says_why(fixed_server, page, tmp_path):
    public = bin_of(fixed_server, "public-demo")
    seq = send(public, "/push", data=b'{"event": "deploy"}')
    page.goto(public["url"])  # no key needed: it is public
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")

    note = page.locator("#bin-kind")
    expect(note).to_contain_text("public, so it is read-only")
    expect(note).to_contain_text("HOOKSCOPE_FIXED_BINS")
    for name in ("Rename", "Forward", "Replay all…", "Clear", "Delete bin"):
        expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
    detail = open_request(page, seq)
    for name in ("Replay to…", "Edit and replay", "Pin", "Delete"):
        expect(detail.get_by_role("button", name=name, exact=True)).to_have_count(0)
    expect(detail.get_by_role("button", name="Copy as…")).to_be_visible()
    expect(detail.get_by_role("link", name="Download raw")).to_be_visible()
    page.screenshot(path=str(tmp_path / "public-bin.png"))


def test_a_fixed_bin_with_a_key_cannot_be_deleted_and_says_why(fixed_server, page):
    keyed = bin_of(fixed_server, "ci-fixed")
    seq = send(keyed, "/push")
    opened = page.context.request.post(
        f"{fixed_server.url}/api/v1/bins/ci-fixed/session",
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert opened.ok
    page.goto(keyed["url"])
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")

    expect(page.locator("#bin-kind")).to_contain_text("never expires and cannot be deleted")
    expect(page.get_by_role("button", name="Delete bin")).to_have_count(0)
    expect(page.get_by_role("button", name="Rename")).to_be_visible()
    expect(page.get_by_role("button", name="Clear")).to_be_visible()
    expect(page.get_by_role("button", name="Replay all…")).to_be_visible()
    detail = open_request(page, seq)
    detail.get_by_role("button", name="Pin").click()
    expect(detail.get_by_role("button", name="Unpin")).to_be_visible()
