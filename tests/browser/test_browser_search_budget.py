"""A search on PostgreSQL that stops on its budget: the page says how far it got and goes on.

The shared server runs on SQLite, whose index answers every search in one call. These tests start
their own server on PostgreSQL with a budget so small that every call searches only 4 requests
(HOOKSCOPE_SEARCH_CHUNK_REQUESTS=2: the 2 newest one by one, then 2 through the GIN index; a
budget of 0 ms allows no more), so a bin of a few dozen requests needs many calls.
"""

from __future__ import annotations

import re

import pytest
from browsing import WAIT_MS, send, shown_seqs
from harness import POSTGRES_URL, ROOT, Gunicorn, drop_postgres_database, fresh_postgres_database
from playwright.sync_api import expect

pytestmark = pytest.mark.browser
# Answers that stopped early the page follows by itself before it asks (static/js/list.js).
AUTO_CONTINUE = int(
    re.search(r"const AUTO_CONTINUE = (\d+);", (ROOT / "static/js/list.js").read_text())[1]
)


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory):
    """The app under gunicorn on a PostgreSQL database of its own, with a tiny search budget."""
    if not POSTGRES_URL:
        pytest.skip("needs PostgreSQL (HOOKSCOPE_TEST_POSTGRES_URL)")
    database = fresh_postgres_database()
    env = {
        "DATABASE_URL": database,
        "HOOKSCOPE_SEARCH_CHUNK_REQUESTS": "2",
        "HOOKSCOPE_SEARCH_BUDGET_MS": "0",
    }
    try:
        with Gunicorn(tmp_path_factory.mktemp("pg-search"), env) as running:
            yield running
    finally:
        drop_postgres_database(database)


def watch_progress(page) -> None:
    """Record every text the search progress line shows, however briefly."""
    page.evaluate(
        """() => {
            window.progressSeen = [];
            const line = document.getElementById("search-progress");
            new MutationObserver(() => {
                if (!line.hidden) window.progressSeen.push(line.textContent);
            }).observe(line, { childList: true, characterData: true, subtree: true,
                               attributes: true });
        }"""
    )


def search_calls(traffic: list[str]) -> list[str]:
    return [url for url in traffic if "/requests?" in url and "q=" in url]


def test_a_search_that_stops_early_goes_on_by_itself_and_finds_old_matches(
    page, pg_server, open_bin, traffic
):
    bin_ = pg_server.create_bin()
    needles = [send(bin_, "/old", data="needle one"), send(bin_, "/old", data="needle two")]
    for i in range(26):
        send(bin_, f"/n/{i}", data=f"hay {i}")
    open_bin(bin_)
    watch_progress(page)
    page.locator("#search-input").fill("needle")

    expect(page.locator("#request-list li")).to_have_count(2, timeout=WAIT_MS)
    assert shown_seqs(page) == needles[::-1]
    expect(page.locator("#list-count")).to_have_text("2 found")
    expect(page.locator("#search-progress")).to_be_hidden()
    expect(page.locator("#load-older")).to_be_hidden()
    expect(page.locator("#list-no-match")).to_be_hidden()
    # 28 requests, 4 a call: the page made 7 calls and said how far each got while it went on.
    assert len(search_calls(traffic)) == 7
    seen = page.evaluate("window.progressSeen")
    assert "Searched back to #25…" in seen, seen
    assert all(re.fullmatch(r"Searched back to #\d+…", text) for text in seen), seen


def test_after_many_early_stops_the_page_asks_before_searching_older_requests(
    page, pg_server, open_bin, traffic
):
    bin_ = pg_server.create_bin()
    for i in range(4 * (AUTO_CONTINUE + 5)):
        send(bin_, f"/n/{i}", data="refs/heads/main")  # "heads main", never "main heads"
    open_bin(bin_)
    page.locator("#search-input").fill('"main heads"')

    older = page.get_by_role("button", name="Search older requests")
    expect(older).to_be_visible(timeout=WAIT_MS)
    progress = page.locator("#search-progress")
    # The first answer and AUTO_CONTINUE more, 4 requests each, from the newest (#120) down.
    first_unsearched = 4 * (AUTO_CONTINUE + 5) - 4 * (AUTO_CONTINUE + 1)
    expect(progress).to_have_text(
        f"Searched back to #{first_unsearched + 1}; older requests not searched yet."
    )
    assert len(search_calls(traffic)) == AUTO_CONTINUE + 1
    expect(page.locator("#list-no-match")).to_be_hidden()  # not known yet

    older.click()
    expect(page.locator("#list-no-match")).to_be_visible(timeout=WAIT_MS)
    expect(progress).to_be_hidden()
    expect(older).to_be_hidden()
    expect(page.locator("#request-list li")).to_have_count(0)
