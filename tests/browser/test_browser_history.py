"""What arrived before the page was opened is there, newest first, a page at a time."""

from __future__ import annotations

import pytest
from browsing import WAIT_MS, row, send, shown_seqs
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_earlier_captures_are_listed_newest_first_and_older_ones_load_on_demand(
    page, bin_, open_bin
):
    seqs = [send(bin_, f"/event/{n}", json={"n": n}) for n in range(60)]
    open_bin(bin_)

    expect(page.locator("#request-list li")).to_have_count(50)
    assert shown_seqs(page) == sorted(seqs, reverse=True)[:50]
    expect(row(page, seqs[-1]).locator(".row-target")).to_have_text("/event/59")
    older = page.get_by_role("button", name="Load older")
    expect(older).to_be_visible()

    older.click()

    expect(page.locator("#request-list li")).to_have_count(60)
    assert shown_seqs(page) == sorted(seqs, reverse=True)
    expect(older).to_be_hidden()


def test_live_captures_join_the_top_of_a_loaded_history(page, bin_, open_bin):
    before = [send(bin_, f"/before/{n}") for n in range(3)]
    open_bin(bin_)
    expect(page.locator("#request-list li")).to_have_count(3)
    expect(page.get_by_role("button", name="Load older")).to_be_hidden()

    after = [send(bin_, f"/after/{n}") for n in range(3)]

    expect(page.locator("#request-list li")).to_have_count(6, timeout=WAIT_MS)
    assert shown_seqs(page) == sorted(before + after, reverse=True)
