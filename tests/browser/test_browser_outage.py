"""When storage fails, the pages say so in a banner, and take it down by themselves when it is back.

The outage is real: another process holds the SQLite file's write lock (as tests/test_outage.py
does), against the real app under gunicorn, whose writers give up after 200 ms.
"""

from __future__ import annotations

import re
import signal

import pytest
import requests
from browsing import WAIT_MS, row, send, shown_seqs
from harness import SUITE_DATABASE, Gunicorn, SqliteLockHolder
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

# Retry-After 1 s: checks come after 1, 2, 4 s..., so recovery shows within a few seconds.
RECOVERY_MS = 15_000


@pytest.fixture
def outage(tmp_path):
    """A gunicorn of its own and a holder for its database's write lock."""
    if SUITE_DATABASE != "sqlite":
        pytest.skip("holds an SQLite file's lock")
    server = Gunicorn(
        tmp_path,
        env={"HOOKSCOPE_SQLITE_BUSY_TIMEOUT_MS": "200", "HOOKSCOPE_RETRY_AFTER_SECONDS": "1"},
    ).start()
    holder = SqliteLockHolder(server.env["DATABASE_URL"].removeprefix("sqlite:///"))
    yield server, holder
    holder.release()
    server.stop(signal.SIGINT)  # a graceful stop would wait for the page's open WebSocket


def banner(page):
    return page.locator("#storage-banner")


def readyz_answers(page) -> list[int]:
    """Record the status of every storage check the page makes."""
    answers: list[int] = []
    page.on("response", lambda r: answers.append(r.status) if r.url.endswith("/readyz") else None)
    return answers


# outage before page: the page closes first, then the server stops.
def test_an_open_bin_page_shows_the_outage_and_recovers_by_itself(outage, page):
    server, holder = outage
    bin_ = server.create_bin()
    first = send(bin_, "/before")
    checks = readyz_answers(page)
    page.goto(bin_["share_url"])
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    expect(banner(page)).to_be_hidden()

    holder.hold()
    refused = requests.post(bin_["capture_url"] + "/during", data=b"lost?", timeout=10)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    # Someone else's change fails too: the server tells every open page over the live stream.
    patch = requests.patch(
        server.url + f"/api/v1/bins/{bin_['id']}", json={"name": "x"}, auth=server.auth, timeout=10
    )
    assert patch.status_code == 503

    alert = page.get_by_role("alert")
    expect(alert).to_have_text(re.compile(r"^Storage is unavailable\. New captures are refused"))
    expect(banner(page)).to_be_visible()
    expect(page.locator("#storage-banner-retry")).to_have_text(re.compile(r"Retrying in \d+ s"))
    # While the lock is held the page keeps asking, is told 503, and keeps the banner up.
    page.wait_for_function(
        "() => performance.getEntriesByName(location.origin + '/readyz').length >= 2",
        timeout=RECOVERY_MS,
    )
    assert checks and set(checks) == {503}
    expect(banner(page)).to_be_visible()

    holder.release()
    after = send(bin_, "/after")
    # The stored capture itself tells open pages that storage is back (or the page's next
    # /readyz check does, whichever comes first).
    expect(banner(page)).to_be_hidden(timeout=RECOVERY_MS)
    expect(row(page, after)).to_be_visible()
    assert shown_seqs(page) == [after, first]  # the refused capture was never stored


def test_a_change_refused_by_storage_shows_the_banner_and_works_after(outage, page):
    server, holder = outage
    bin_ = server.create_bin()
    seq = send(bin_, "/pin-me")
    page.goto(bin_["share_url"])
    row(page, seq).click()
    pin = page.locator("#detail .detail-actions button", has_text="Pin")
    expect(pin).to_be_visible()

    holder.hold()
    pin.click()
    expect(page.get_by_role("alert")).to_contain_text("Storage is unavailable.")
    expect(page.locator("#notice")).to_contain_text("Could not change the pin")
    holder.release()

    expect(banner(page)).to_be_hidden(timeout=RECOVERY_MS)
    pin.click()
    expect(page.locator("#detail .detail-actions button", has_text="Unpin")).to_be_visible()
    expect(row(page, seq)).to_have_class(re.compile(r"\bpinned\b"))


def test_the_home_page_says_the_bin_was_not_created_and_recovers(outage, page):
    server, holder = outage
    page.goto(server.url + "/")
    holder.hold()
    page.get_by_role("button", name="Create bin", exact=True).click()

    expect(page.get_by_role("heading", name="The bin was not created")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("Storage is unavailable.")
    holder.release()

    expect(banner(page)).to_be_hidden(timeout=RECOVERY_MS)
    page.get_by_role("button", name="Create bin", exact=True).click()
    page.wait_for_url(re.compile(r"/bins/[a-z2-7]{26}$"))
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")


def test_an_unreachable_server_shows_the_banner_and_the_page_catches_up(page, bin_, open_bin):
    first = send(bin_, "/before")
    open_bin(bin_)
    page.context.set_offline(True)
    row(page, first).click()  # opening a request needs the server

    expect(page.get_by_role("alert")).to_have_text(re.compile(r"^Cannot reach Hookscope\."))
    missed = send(bin_, "/while-offline")
    page.context.set_offline(False)

    expect(banner(page)).to_be_hidden(timeout=RECOVERY_MS)
    expect(row(page, missed)).to_be_visible(timeout=WAIT_MS)
    expect(page.locator(f"#detail .detail[data-seq='{first}']")).to_be_visible()
