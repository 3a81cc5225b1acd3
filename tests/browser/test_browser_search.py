"""Searching a bin from its page: only matching rows, an empty state, live captures kept honest."""

from __future__ import annotations

import pytest
from browsing import WAIT_MS, row, send, send_raw, shown_seqs
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def search_for(page, text: str) -> None:
    """Type into the search box as a user would, and wait for the list to follow."""
    box = page.locator("#search-input")
    box.click()
    box.press_sequentially(text)
    page.wait_for_function(
        "q => new URL(location.href).searchParams.get('q') === q", arg=text, timeout=WAIT_MS
    )
    expect(page.locator("#list-loading")).to_be_hidden()


@pytest.fixture
def invoices(bin_) -> dict[str, int]:
    return {
        "paid": send(bin_, "/billing", json={"event": "invoice.paid", "amount": 4200}),
        "ping": send(bin_, "/health", method="GET", params={"probe": "1"}),
        "failed": send(
            bin_,
            "/billing",
            data="event=invoice.payment_failed&customer=ada%40example.com",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
    }


def test_typing_a_search_shows_only_matching_rows_and_clearing_restores_all(
    page, bin_, open_bin, invoices
):
    open_bin(bin_)
    expect(page.locator("#request-list li")).to_have_count(3)

    search_for(page, "invoice")
    expect(page.locator("#request-list li")).to_have_count(2)
    assert shown_seqs(page) == [invoices["failed"], invoices["paid"]]
    expect(page.locator("#list-count")).to_have_text("2 found")

    page.locator("#search-input").fill("ada@example.com")
    expect(page.locator("#request-list li")).to_have_count(1)
    assert shown_seqs(page) == [invoices["failed"]]

    page.locator("#search-input").press("Escape")
    expect(page.locator("#request-list li")).to_have_count(3)
    assert shown_seqs(page) == sorted(invoices.values(), reverse=True)
    expect(page.locator("#search-input")).to_have_value("")
    assert "q=" not in page.url


def test_a_search_that_finds_nothing_says_so_and_offers_the_way_back(page, bin_, open_bin):
    send(bin_, "/one", data="alpha")
    open_bin(bin_)
    search_for(page, "nothing-like-this")
    no_match = page.locator("#list-no-match")
    expect(no_match).to_be_visible()
    expect(no_match.locator("q")).to_have_text("nothing-like-this")
    expect(page.locator("#request-list li")).to_have_count(0)
    expect(page.locator("#list-empty")).to_be_hidden()  # not "waiting for the first request"

    no_match.get_by_role("button", name="Clear search").click()
    expect(page.locator("#request-list li")).to_have_count(1)
    expect(no_match).to_be_hidden()


def test_a_query_that_cannot_be_searched_is_explained(page, bin_, open_bin):
    send(bin_, "/one", data="alpha")
    open_bin(bin_)
    page.locator("#search-input").fill("ab*")
    expect(page.locator("#list-error")).to_contain_text("at least 3 letters or digits")
    expect(page.locator("#request-list li")).to_have_count(0)


def test_live_captures_during_a_search_show_only_if_they_match(page, bin_, open_bin, invoices):
    open_bin(bin_)
    search_for(page, "invoice")
    expect(page.locator("#request-list li")).to_have_count(2)

    unrelated = send(bin_, "/other", data="nothing to see")
    matching = send(bin_, "/billing", json={"event": "invoice.created"})

    expect(row(page, matching)).to_be_visible(timeout=WAIT_MS)
    hint = page.locator("#search-hint")
    expect(hint).to_have_text("1 new request not matching this search. Show all requests")
    assert shown_seqs(page) == [matching, invoices["failed"], invoices["paid"]]
    expect(row(page, unrelated)).to_have_count(0)

    hint.get_by_role("button", name="Show all requests").click()
    expect(row(page, unrelated)).to_be_visible()
    expect(page.locator("#request-list li")).to_have_count(5)
    expect(hint).to_be_hidden()
    expect(page.locator("#search-input")).to_have_value("")

    # With the search gone, captures appear as they arrive again.
    later = send(bin_, "/later", data="anything")
    expect(row(page, later)).to_be_visible(timeout=WAIT_MS)


def test_a_reload_keeps_the_search_and_results_show_as_text(page, dialogs, bin_, open_bin):
    hostile = send_raw(bin_, "/<img/src=x/onerror=alert(1)>?needle=1", body=b"<b>needle</b>")
    send(bin_, "/plain", data="hay")
    open_bin(bin_)
    search_for(page, "needle")
    page.reload()
    page.locator("#live-status[data-state='live']").wait_for()
    expect(page.locator("#search-input")).to_have_value("needle")
    expect(page.locator("#request-list li")).to_have_count(1)
    expect(row(page, hostile).locator(".row-target")).to_have_text(
        "/<img/src=x/onerror=alert(1)>?needle=1"
    )
    assert page.locator("img[src='x']").count() == 0
    assert dialogs == []


def test_slash_goes_to_the_search_box(page, bin_, open_bin):
    open_bin(bin_)
    page.locator("body").press("/")
    expect(page.locator("#search-input")).to_be_focused()
