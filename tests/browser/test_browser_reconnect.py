"""After a restart or a network drop, the page reconnects and catches up: no gaps, no repeats."""

from __future__ import annotations

import signal

import pytest
from browsing import row, send, shown_seqs
from harness import Gunicorn
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

# socket.io's reconnection backs off up to 5 s between attempts.
RECONNECT_MS = 15_000


# fresh_server before page: the page closes first, so the server's stop waits for no socket.
def test_page_catches_up_after_a_server_restart(fresh_server, page):
    server = fresh_server.start()
    bin_ = server.create_bin()
    first = send(bin_, "/before")
    page.goto(bin_["share_url"])
    status = page.locator("#live-status")
    expect(status).to_have_attribute("data-state", "live")
    expect(row(page, first)).to_be_visible()

    # Quick shutdown (SIGINT): a graceful one would wait for the page's open WebSocket.
    server.stop(signal.SIGINT)
    expect(status).to_have_attribute("data-state", "reconnecting")
    server.start()
    # Captured while the page is still reconnecting: it must be replayed, once.
    missed = [send(bin_, f"/missed/{n}") for n in range(3)]

    expect(status).to_have_attribute("data-state", "live", timeout=RECONNECT_MS)
    live = send(bin_, "/after")
    expect(row(page, live)).to_be_visible()
    seqs = shown_seqs(page)
    assert seqs == sorted([first, *missed, live], reverse=True)


def test_page_catches_up_after_a_network_drop(page, bin_, open_bin):
    first = send(bin_, "/before")
    open_bin(bin_)
    status = page.locator("#live-status")

    page.context.set_offline(True)
    expect(status).to_have_attribute("data-state", "reconnecting")
    missed = [send(bin_, f"/missed/{n}") for n in range(3)]
    expect(page.locator("#request-list li")).to_have_count(1)
    page.context.set_offline(False)

    expect(status).to_have_attribute("data-state", "live", timeout=RECONNECT_MS)
    expect(page.locator("#request-list li")).to_have_count(4)
    live = send(bin_, "/after")
    expect(row(page, live)).to_be_visible()
    seqs = shown_seqs(page)
    assert seqs == sorted([first, *missed, live], reverse=True)


def test_more_missed_than_the_server_replays_reloads_the_list(page, tmp_path):
    with Gunicorn(tmp_path, env={"HOOKSCOPE_REPLAY_LIMIT": "2"}) as server:
        bin_ = server.create_bin()
        first = send(bin_, "/before")
        list_reads = []
        page.on("request", lambda r: list_reads.append(r.url) if "/requests?" in r.url else None)
        page.goto(bin_["share_url"])
        status = page.locator("#live-status")
        expect(status).to_have_attribute("data-state", "live")

        page.context.set_offline(True)
        expect(status).to_have_attribute("data-state", "reconnecting")
        missed = [send(bin_, f"/missed/{n}") for n in range(5)]
        page.context.set_offline(False)

        expect(status).to_have_attribute("data-state", "live", timeout=RECONNECT_MS)
        expect(page.locator("#request-list li")).to_have_count(6)
        seqs = shown_seqs(page)
        assert seqs == sorted([first, *missed], reverse=True)
        assert len(list_reads) == 2, "the gap must make the page read its first page again"
        server.stop(signal.SIGINT)  # a graceful stop would wait for the page's open connections
