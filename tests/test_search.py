"""Full-text search within a bin: what it finds, how it pages, what it refuses, and that the
database's own index follows every way requests are stored and deleted."""

from __future__ import annotations

import json
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests
from flask_migrate import downgrade, upgrade
from harness import SUITE_DATABASE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from app.domain import clock
from app.extensions import db
from app.store import bins, search
from app.store.sqlite_rows import STREAM_BLOB_BYTES

sqlite_only = pytest.mark.skipif(SUITE_DATABASE != "sqlite", reason="SQLite's search queue")
postgres_only = pytest.mark.skipif(
    SUITE_DATABASE != "postgres", reason="PostgreSQL's search budget (HOOKSCOPE_TEST_SUITE_DB)"
)


def capture(client, bin_id: str, path: str = "", **kwargs) -> int:
    response = client.post(f"/h/{bin_id}{path}", **kwargs)
    assert response.status_code == 200
    return int(response.headers["X-Hookscope-Seq"])


def search_response(client, bin_id: str, q: str, **params):
    return client.get(f"/api/v1/bins/{bin_id}/requests", query_string={"q": q, **params})


def found(client, bin_id: str, q: str, **params) -> list[int]:
    response = search_response(client, bin_id, q, **params)
    assert response.status_code == 200, response.json
    return [r["seq"] for r in response.json["requests"]]


def indexed_ids(app) -> set[int]:
    """Request ids the search index holds entries for, read from the index itself, once the
    requests queued for indexing (SQLite) are indexed as a search would."""
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            search.sqlite.catch_up()
            db.session.execute(
                text(
                    "CREATE VIRTUAL TABLE IF NOT EXISTS temp.search_terms"
                    " USING fts5vocab(main, request_search, instance)"
                )
            )
            ids = db.session.scalars(text("SELECT DISTINCT doc FROM temp.search_terms")).all()
        else:
            ids = db.session.scalars(
                text("SELECT request_id FROM payloads WHERE search_document IS NOT NULL")
            ).all()
        db.session.rollback()
    return set(ids)


def stored_ids(app) -> set[int]:
    with app.app_context():
        ids = set(db.session.scalars(text("SELECT id FROM requests")).all())
        db.session.rollback()
    return ids


@pytest.fixture
def stripe_and_github(client, new_bin):
    """A bin holding a Stripe event, a GitHub push, a form and a plain-text log line."""
    bin_id = new_bin["id"]
    seqs = {
        "stripe": capture(
            client,
            bin_id,
            "/stripe/events?livemode=false",
            json={"type": "payment_intent.succeeded", "receipt_email": "ada@example.com"},
            headers={"Stripe-Signature": "t=1,v1=abc", "X-Customer": 'Zoë "VIP"'},
        ),
        "github": capture(
            client,
            bin_id,
            "/github",
            json={"ref": "refs/heads/main", "pusher": {"name": "octocat"}},
            headers={"X-GitHub-Event": "push"},
        ),
        "form": capture(
            client,
            bin_id,
            "/slack/commands?user=grace%40example.com",
            data="command=%2Fdeploy&text=checkout+service+now",
            content_type="application/x-www-form-urlencoded",
        ),
        "log": capture(
            client,
            bin_id,
            "/logs",
            data="INFO checkout finished in 231 ms; café ☕ Ünïcode".encode(),
            content_type="text/plain; charset=utf-8",
        ),
    }
    return bin_id, seqs


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("octocat", ["github"]),  # a word of the JSON body
        ("OCTOCAT", ["github"]),  # case does not matter
        ("refs/heads/main", ["github"]),  # punctuation separates words: a phrase
        ('"heads main"', ["github"]),  # a quoted phrase, in order
        ('"main heads"', []),  # ... and not out of order
        ("checkout", ["log", "form"]),  # newest first
        ("checkout finished", ["log"]),  # words are ANDed
        ("checkout nowhere", []),
        ("finis*", ["log"]),  # prefix
        ('"checkout fin"*', ["log"]),  # a phrase whose last word is a prefix
        ("payment_intent.succeeded", ["stripe"]),
        ("ada@example.com", ["stripe"]),  # an email in a JSON body
        ("grace@example.com", ["form"]),  # ... percent-encoded in a query string
        ("deploy", ["form"]),  # %2Fdeploy in a form body
        ("livemode", ["stripe"]),  # the query string
        ("stripe events", ["stripe"]),  # the path
        ("stripe-signature", ["stripe"]),  # a header name
        ('zoë "vip"', ["stripe"]),  # a header value stored with JSON escapes
        ("x-github-event push", ["github"]),  # a header name and value
        ("POST logs", ["log"]),  # the method
        ("café", ["log"]),
        ("CAFÉ ünïcode", ["log"]),
        ("cafe", []),  # accents matter
        ("☕", None),  # a symbol is not a word: nothing to search for
    ],
)
def test_search_finds_words_anywhere_in_a_request(client, stripe_and_github, q, expected):
    bin_id, seqs = stripe_and_github
    response = search_response(client, bin_id, q)
    if expected is None:
        assert response.status_code == 400
        assert response.json["error"] == "bad_query"
        return
    assert response.status_code == 200, response.json
    assert [r["seq"] for r in response.json["requests"]] == [seqs[name] for name in expected]


def test_results_are_summaries_in_the_list_shape(client, stripe_and_github):
    bin_id, seqs = stripe_and_github
    listed = client.get(f"/api/v1/bins/{bin_id}/requests").json["requests"]
    searched = search_response(client, bin_id, "octocat").json
    assert searched["requests"] == [r for r in listed if r["seq"] == seqs["github"]]
    assert searched["next_before"] is None


def test_search_pages_newest_first_with_the_list_cursor(client, new_bin):
    bin_id = new_bin["id"]
    for i in range(12):
        capture(client, bin_id, f"/n/{i}", data=f"{'needle' if i % 2 else 'hay'} {i}")
    first = search_response(client, bin_id, "needle", limit=4).json
    assert [r["seq"] for r in first["requests"]] == [12, 10, 8, 6]
    second = search_response(client, bin_id, "needle", limit=4, before=first["next_before"]).json
    assert [r["seq"] for r in second["requests"]] == [4, 2]
    assert second["next_before"] is None
    assert found(client, bin_id, "needle", before=7) == [6, 4, 2]
    assert found(client, bin_id, "needle", before=1) == []


@pytest.mark.parametrize("window", [1, 3, 5000])
def test_postgres_two_steps_give_the_same_pages(client, new_bin, monkeypatch, window):
    # PostgreSQL tests the newest `window` requests one by one, then asks the GIN index for the
    # rest (app/store/search/); where the window ends must not change what a page holds.
    monkeypatch.setattr(search.postgres, "RECENT_WINDOW", window)
    bin_id = new_bin["id"]
    for i in range(10):
        capture(client, bin_id, data=f"{'needle' if i in (0, 1, 4, 8) else 'hay'} {i}")
    client.put(f"/h/{bin_id}", data="needle put")
    assert found(client, bin_id, "needle") == [11, 9, 5, 2, 1]
    first = search_response(client, bin_id, "needle", limit=2).json
    assert [r["seq"] for r in first["requests"]] == [11, 9]
    rest = found(client, bin_id, "needle", limit=5, before=first["next_before"])
    assert rest == [5, 2, 1]
    assert found(client, bin_id, "needle", method="PUT") == [11]
    assert found(client, bin_id, "needle", method="POST", before=9) == [5, 2, 1]


def follow(client, bin_id: str, q: str, **params) -> tuple[list[int], list[dict]]:
    """Page through a search from the newest match until next_before is null."""
    seqs, answers, before = [], [], None
    while True:
        response = search_response(
            client, bin_id, q, **params, **({"before": before} if before else {})
        )
        assert response.status_code == 200, response.json
        answers.append(response.json)
        seqs += [r["seq"] for r in response.json["requests"]]
        before = response.json["next_before"]
        if before is None:
            return seqs, answers
        assert len(answers) < 500, "the cursor does not get anywhere"


def small_budget(app, monkeypatch, chunk: int, budget_ms: int = 0) -> None:
    """Make every PostgreSQL search call look at `chunk` newest requests one by one, then at
    most `chunk` more through the GIN index (budget 0: no more ranges after the first)."""
    monkeypatch.setitem(app.config, "HOOKSCOPE_SEARCH_CHUNK_REQUESTS", chunk)
    monkeypatch.setitem(app.config, "HOOKSCOPE_SEARCH_BUDGET_MS", budget_ms)


# Where "needle" lies in a bin of 60 requests: bunched, alone, in long gaps, at both ends.
NEEDLES = {1, 2, 3, 7, 19, 20, 21, 22, 23, 24, 25, 31, 44, 52, 58, 59, 60}


@pytest.fixture
def spread_needles(client, new_bin) -> tuple[str, list[int]]:
    """A bin of 60 requests ("needle" in some, the words "main" and "heads" in every one), with
    five deleted so that seqs have gaps; returns the bin and its needles, newest first."""
    bin_id = new_bin["id"]
    for i in range(1, 61):
        capture(
            client, bin_id, "/refs/heads/main", data=f"{'needle' if i in NEEDLES else 'hay'} {i}"
        )
    for seq in (4, 20, 30, 45, 59):
        assert client.delete(f"/api/v1/bins/{bin_id}/requests/{seq}").status_code == 204
    return bin_id, sorted(NEEDLES - {4, 20, 30, 45, 59}, reverse=True)


@postgres_only
@pytest.mark.parametrize("chunk", [1, 2, 3, 7])
@pytest.mark.parametrize("limit", [1, 2, 5, 50])
def test_following_the_cursor_finds_every_match_once_whatever_the_budget(
    app, client, monkeypatch, spread_needles, chunk, limit
):
    bin_id, needles = spread_needles
    assert found(client, bin_id, "needle", limit=50) == needles  # the default budget: one call
    small_budget(app, monkeypatch, chunk)
    seqs, answers = follow(client, bin_id, "needle", limit=limit)
    assert seqs == needles  # newest first, each once, none missed
    stopped = [a for a in answers if "searched_down_to" in a]
    assert stopped, "no call stopped on its budget: this test would prove nothing"
    if limit <= chunk:
        assert any(len(a["requests"]) == limit for a in answers), "no page filled"
    for answer in answers:
        assert len(answer["requests"]) <= limit
        if "searched_down_to" in answer:
            # The search got down to there: everything it found lies at or above it.
            assert answer["next_before"] == answer["searched_down_to"]
            assert all(r["seq"] >= answer["searched_down_to"] for r in answer["requests"])


@postgres_only
def test_a_phrase_of_common_words_that_never_meet_stops_early_and_says_how_far(
    app, client, monkeypatch, spread_needles
):
    bin_id, _ = spread_needles  # every request holds "heads" and "main", never "main heads"
    small_budget(app, monkeypatch, chunk=5)
    first = search_response(client, bin_id, '"main heads"').json
    # The 5 newest requests (60, 58, 57, 56, 55) one by one, then seqs 50-54 through the index.
    assert first == {"requests": [], "next_before": 50, "searched_down_to": 50}
    seqs, answers = follow(client, bin_id, '"main heads"')
    assert seqs == []
    assert answers[-1]["next_before"] is None and "searched_down_to" not in answers[-1]
    # Each call: the 5 newest requests below `before`, then the 5 seqs below those.
    assert [a.get("searched_down_to") for a in answers] == [50, 39, 29, 19, 9, None]
    # A page that fills, or a search that reaches the oldest request, is answered as before.
    assert "searched_down_to" not in search_response(client, bin_id, "heads", limit=3).json
    small_budget(app, monkeypatch, chunk=100)
    assert search_response(client, bin_id, '"main heads"').json == {
        "requests": [],
        "next_before": None,
    }


@postgres_only
def test_ranges_that_are_quick_go_on_within_the_time_budget(
    app, client, monkeypatch, spread_needles
):
    bin_id, needles = spread_needles
    small_budget(app, monkeypatch, chunk=2, budget_ms=60_000)
    # The first range holds 2 requests; each later one is GROWTH times larger while time is left.
    answer = search_response(client, bin_id, '"main heads"').json
    assert answer == {"requests": [], "next_before": None}
    assert found(client, bin_id, "needle", limit=50) == needles


SETTINGS = ("statement_timeout", "jit", "enable_bitmapscan", "enable_seqscan")


def settings_now() -> dict[str, str]:
    return {name: db.session.scalar(text(f"SHOW {name}")) for name in SETTINGS}


def spy_on_ranges(monkeypatch, sleep_if) -> list[tuple[int, str]]:
    """Record each range the search reads (its lowest seq, and whether bitmap scans were on, i.e.
    not walked); make PostgreSQL sleep 10 s in those for which ``sleep_if(n, walked)`` holds."""
    seen: list[tuple[int, str]] = []
    real_read = search.postgres.read

    def read(sql, params):
        if "WITH matches" in sql:
            walked = db.session.scalar(text("SHOW enable_bitmapscan")) == "off"
            seen.append((params["low"], "walked" if walked else "index"))
            # JIT compiles plans it thinks costly and cannot be interrupted meanwhile.
            assert db.session.scalar(text("SHOW jit")) == "off"
            if sleep_if(len(seen), walked):
                db.session.execute(text("SELECT pg_sleep(10)"))
        return real_read(sql, params)

    monkeypatch.setattr(search.postgres, "read", read)
    return seen


@postgres_only
def test_a_range_cancelled_by_its_timeout_is_dropped_and_the_search_says_where_it_stopped(
    app, client, monkeypatch, spread_needles
):
    bin_id, needles = spread_needles
    small_budget(app, monkeypatch, chunk=3, budget_ms=1000)
    seen = spy_on_ranges(monkeypatch, lambda n, walked: n == 2)
    with app.app_context():
        before = settings_now()
        page = search.page(bin_id, search.parse("needle"), limit=50)
        # The window (60, 58, 57) and the first range (54-56) were searched; the next range was
        # quick to grow (30-53) and is dropped whole when PostgreSQL cancels it.
        assert seen == [(54, "index"), (30, "index")]
        assert page.next_before == page.searched_down_to == 54
        # The rows read before it are intact, and the transaction goes on as it was.
        assert [r["seq"] for r in page.requests] == [s for s in needles if s >= 54] == [60, 58]
        assert settings_now() == before
        assert db.session.scalar(text("SELECT count(*) FROM requests")) == 55


@postgres_only
def test_a_first_range_the_index_is_slow_on_is_walked_instead(
    app, client, monkeypatch, spread_needles
):
    bin_id, needles = spread_needles
    small_budget(app, monkeypatch, chunk=10, budget_ms=0)
    # As when the planner rechecks every candidate in the bin: the index does not answer in time.
    seen = spy_on_ranges(monkeypatch, lambda n, walked: not walked)
    with app.app_context():
        before = settings_now()
        page = search.page(bin_id, search.parse("needle"), limit=50)
        # The window (60, 58, 57, ..., 50) and then seqs 40-49, through the index, then walked.
        assert seen == [(40, "index"), (40, "walked")]
        assert (
            [r["seq"] for r in page.requests] == [s for s in needles if s >= 40] == [60, 58, 52, 44]
        )
        assert page.next_before == page.searched_down_to == 40
        assert settings_now() == before
    # Followed to the end, the walked ranges find what the index would have.
    seqs, answers = follow(client, bin_id, "needle", limit=4)
    assert seqs == needles
    assert {how for _, how in seen} == {"index", "walked"}
    with app.app_context():
        assert "Index Scan using payloads_pkey" in walk_plan(bin_id)


def walk_plan(bin_id: str) -> str:
    """PostgreSQL's plan for a walked range: the primary key, never the GIN index alone."""
    scan = search.postgres._Ranges(
        bin_id, "'needle'", "requests.bin_id = :bin_id", {"bin_id": bin_id}
    )
    plans = []

    def explain(sql, params):
        statement = text(f"EXPLAIN {sql}").bindparams(**params)
        plans.append("\n".join(db.session.scalars(statement)))
        return []

    real_read, search.postgres.read = search.postgres.read, explain
    # Make a table scan look cheap to the planner: a walk must use the primary key all the same.
    db.session.execute(text("SET LOCAL random_page_cost = 1000"))
    try:
        scan.read(61, 60, 50, 1000, walk=True)
    finally:
        search.postgres.read = real_read
    return plans[0]


def test_search_combines_with_the_list_filters(client, new_bin):
    bin_id = new_bin["id"]
    capture(client, bin_id, data="order created")
    assert client.put(f"/h/{bin_id}", data="order updated").status_code == 200
    assert found(client, bin_id, "order", method="put") == [2]
    later = (clock.now() + timedelta(hours=1)).isoformat()
    assert found(client, bin_id, "order", since=later) == []
    assert found(client, bin_id, "order", until=later) == [2, 1]


def test_search_stays_within_its_bin(client, new_bin):
    other = client.post("/api/v1/bins").json["id"]
    capture(client, new_bin["id"], data="shared word")
    capture(client, other, data="shared word")
    assert found(client, new_bin["id"], "shared") == [1]
    # The bin's own id is indexed in a column of its own, not searchable as a word.
    assert found(client, new_bin["id"], new_bin["id"].encode().hex()) == []


def test_search_needs_the_read_key_like_the_list(browser, client, new_bin):
    capture(client, new_bin["id"], data="secret word")
    stranger = browser()
    response = search_response(stranger, new_bin["id"], "secret")
    assert response.status_code == 404
    assert response.json["error"] == "bin_not_found"
    with_key = stranger.get(
        f"/api/v1/bins/{new_bin['id']}/requests",
        query_string={"q": "secret"},
        headers={"Authorization": f"Bearer {new_bin['read_key']}"},
    )
    assert [r["seq"] for r in with_key.json["requests"]] == [1]


def test_an_empty_query_is_the_plain_list(client, new_bin):
    capture(client, new_bin["id"], data="a")
    assert found(client, new_bin["id"], "") == [1]
    assert found(client, new_bin["id"], "   ") == [1]


BINARY = bytes(range(256)) * 4  # NUL bytes: not text


@pytest.mark.parametrize(
    ("body", "content_type", "body_word_found"),
    [
        (BINARY + b" needle", "application/octet-stream", False),
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00needle", None, False),  # gzip: has NULs
        (b"\xff\xfe invalid utf-8 \xc3 needle", "text/plain", True),  # read as far as possible
        (b"\xed\xa0\x80 lone surrogate bytes needle", "text/plain", True),
        ("needle ".encode("utf-16-le"), "text/plain; charset=utf-16", False),
    ],
)
def test_bodies_that_are_not_text_are_stored_and_their_headers_searchable(
    app, client, new_bin, body, content_type, body_word_found
):
    headers = {"X-Marker": "findme"}
    seq = capture(client, new_bin["id"], data=body, content_type=content_type, headers=headers)
    raw = client.get(f"/api/v1/bins/{new_bin['id']}/requests/{seq}/raw")
    assert raw.data == body
    assert found(client, new_bin["id"], "findme") == [seq]
    assert found(client, new_bin["id"], "needle") == ([seq] if body_word_found else [])
    assert indexed_ids(app) == stored_ids(app)


def test_only_the_first_64_kib_of_a_body_is_indexed(client, new_bin):
    head = b"early " + b"x" * (search.INDEXED_BODY_BYTES - 20)
    # A UTF-8 character cut in two at the limit must not stop the rest from being indexed.
    body = head + "é".encode() * 20 + b" late"
    seq = capture(client, new_bin["id"], data=body, content_type="text/plain")
    assert found(client, new_bin["id"], "early") == [seq]
    assert found(client, new_bin["id"], "late") == []


def test_a_large_body_is_captured_and_searchable(client, new_bin):
    body = (b"lorem ipsum dolor sit amet " * 40_000)[: 1024 * 1024]
    seq = capture(client, new_bin["id"], data=body, content_type="text/plain")
    assert found(client, new_bin["id"], '"ipsum dolor"') == [seq]


BLOB_BODIES = {
    "text": (b"stripe webhook payload ", "text/plain", "payload"),
    "form": (b"event=stripe&note=payload%40a.com&", "application/x-www-form-urlencoded", "payload"),
    "latin-1": (b"stripe caf\xe9 payload ", "text/plain", "payload"),
    "binary": (b"stripe\x00 payload ", "application/octet-stream", None),
}


@pytest.mark.parametrize("size", [STREAM_BLOB_BYTES, 8 * 1024 * 1024])
@pytest.mark.parametrize("kind", BLOB_BODIES)
def test_a_body_written_through_the_blob_api_is_indexed_and_deleted_cleanly(
    app, client, new_bin, size, kind
):
    """SQLite writes big bodies into the row after inserting it; the index must see the body as
    the migration's view does (FTS5's integrity check compares the two)."""
    bin_id = new_bin["id"]
    start, content_type, word = BLOB_BODIES[kind]
    body = (start + b"z" * size)[:size]
    seq = capture(client, bin_id, data=body, content_type=content_type)
    assert queued_ids(app) == set()  # indexed in its own transaction, not through the view
    other = capture(client, bin_id, data=b"stripe small", content_type="text/plain")
    assert client.get(f"/api/v1/bins/{bin_id}/requests/{seq}/raw").data == body
    assert found(client, bin_id, "payload") == ([seq] if word else [])
    assert_indexed_as_the_view_says(app, bin_id, seq)
    assert_index_consistent(app)
    # Deleting the row removes the text it was indexed with: FTS5 fails ("malformed") otherwise.
    assert client.delete(f"/api/v1/bins/{bin_id}/requests/{seq}").status_code == 204
    assert found(client, bin_id, "stripe") == [other]
    assert found(client, bin_id, "payload") == []
    assert_index_consistent(app)


def assert_indexed_as_the_view_says(app, bin_id: str, seq: int) -> None:
    """The index holds for this request exactly the words the migration's view gives it (what
    FTS5 will be told when the request is deleted). SQLite only."""
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            return
        run = db.session.execute
        (request_id,) = run(
            text("SELECT id FROM requests WHERE bin_id = :b AND seq = :s"), {"b": bin_id, "s": seq}
        ).one()
        run(text("CREATE VIRTUAL TABLE temp.v1 USING fts5vocab(main, request_search, instance)"))
        run(text("CREATE VIRTUAL TABLE temp.want USING fts5(bin, target, headers, body)"))
        run(text("CREATE VIRTUAL TABLE temp.v2 USING fts5vocab(temp, want, instance)"))
        run(
            text(
                "INSERT INTO temp.want(rowid, bin, target, headers, body)"
                " SELECT id, bin, target, headers, body FROM request_search_source WHERE id = :i"
            ),
            {"i": request_id},
        )
        words = "SELECT term, col, offset FROM temp.{} WHERE doc = :i"
        indexed = set(run(text(words.format("v1")), {"i": request_id}).all())
        wanted = set(run(text(words.format("v2")), {"i": request_id}).all())
        for table in ("v1", "v2", "want"):
            run(text(f"DROP TABLE temp.{table}"))
        db.session.commit()
    assert indexed == wanted
    assert indexed  # the request's bin, method and path at least


def assert_index_consistent(app) -> None:
    """FTS5's own check that the index holds exactly what its content view says (SQLite)."""
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            db.session.execute(
                text("INSERT INTO request_search(request_search) VALUES ('integrity-check')")
            )
        db.session.rollback()


# Queries built to break an FTS5 MATCH expression or a tsquery, or the request itself.
HOSTILE = [
    '"',
    '""',
    '"""',
    "*",
    "**",
    "a*b*",
    "NEAR(needle haystack)",
    "needle OR haystack",
    "needle AND",
    "AND",
    "NOT needle",
    "-needle",
    "^needle",
    "needle:*",
    "bin : needle",
    "{bin}: needle",
    "{target headers body} : needle",
    "body:needle",
    "(needle",
    "needle)",
    "'needle'",
    "''",
    "\\",
    "needle\\",
    "needle & haystack | !x <-> y",
    "needle:*A",
    "%",
    "_",
    "needle\x00haystack",
    "\x00",
    "needle\ud800",
    "\udfff",
    "\ufffd",
    "😀 needle",
    "²",
    "\u200f\u202e needle",
    "needle\r\nhaystack\t",
    "n" * 500,
    "n" * 501,
    "x" * 10_000,
    " ".join(["needle"] * 16),
    " ".join(["needle"] * 17),
    "a*",
    "ab*",
    "needle" + "'" * 100,
]


@pytest.mark.parametrize("q", HOSTILE)
def test_hostile_queries_get_an_answer_never_a_server_error(client, new_bin, q):
    capture(client, new_bin["id"], data="needle haystack")
    response = client.get(
        f"/api/v1/bins/{new_bin['id']}/requests",
        # Sent as UTF-8 with lone surrogates passed through, as a hostile client could.
        query_string=f"q={quote_any(q)}",
    )
    assert response.status_code in (200, 400), response.data[:300]
    if response.status_code == 400:
        assert response.json["error"] == "bad_query"
        assert "q" in response.json["message"] or "prefix" in response.json["message"]
    else:
        assert all(r["bin"] == new_bin["id"] for r in response.json["requests"])


def quote_any(value: str) -> str:
    from urllib.parse import quote

    return quote(value.encode("utf-8", "surrogatepass"), safe="")


@pytest.mark.parametrize(
    ("q", "why"),
    [
        ("x" * 10_000, "10,000 characters"),
        ("n" * 501, "at most 500"),
        (" ".join(["w"] * 17), "at most 16"),
        ("ab*", "at least 3"),
        ("!!! ???", "no letters or digits"),
        ("\x00", "no letters or digits"),
        ("😀", "no letters or digits"),
    ],
)
def test_what_cannot_be_searched_is_explained(client, new_bin, q, why):
    response = client.get(
        f"/api/v1/bins/{new_bin['id']}/requests", query_string=f"q={quote_any(q)}"
    )
    assert response.status_code == 400
    assert response.json["error"] == "bad_query"
    assert why in response.json["message"]


def test_odd_queries_search_their_words(client, new_bin):
    capture(client, new_bin["id"], data="needle haystack")
    assert found(client, new_bin["id"], "NEAR(needle haystack)") == []  # NEAR is a word here
    assert found(client, new_bin["id"], "(needle") == [1]
    assert found(client, new_bin["id"], "needle\x00haystack") == [1]
    assert found(client, new_bin["id"], '"needle') == [1]  # an unclosed quote runs to the end
    assert found(client, new_bin["id"], "needle:*") == [1]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(q=st.text(max_size=80))
def test_any_text_gets_a_200_or_a_400(client, new_bin, q):
    response = client.get(
        f"/api/v1/bins/{new_bin['id']}/requests", query_string=f"q={quote_any(q)}"
    )
    assert response.status_code in (200, 400), (q, response.data[:300])
    if response.status_code == 400:
        assert response.json["error"] == "bad_query"


@pytest.mark.parametrize(
    ("q", "terms"),
    [
        ("a b", [(("a",), False), (("b",), False)]),
        ('"a b" cde*', [(("a", "b"), False), (("cde",), True)]),
        ('"a bcd"*', [(("a", "bcd"), True)]),
        ('"a bcd*"', [(("a", "bcd"), True)]),
        ("user@example.com", [(("user", "example", "com"), False)]),
        ('x"y z"', [(("x",), False), (("y", "z"), False)]),
        ("!!! a", [(("a",), False)]),
    ],
)
def test_the_query_language(q, terms):
    assert [(t.words, t.prefix) for t in search.parse(q)] == terms


def test_the_engines_queries_hold_only_words():
    terms = search.parse('a OR cde* "d efg"* NEAR(f) {bin}:g')
    assert search.fts5_query("bin-1", terms) == (
        'bin : "62696e2d31"'
        ' AND {target headers body} : "a"'
        ' AND {target headers body} : "OR"'
        ' AND {target headers body} : "cde" *'
        ' AND {target headers body} : "d efg" *'
        ' AND {target headers body} : "NEAR f"'
        ' AND {target headers body} : "bin g"'
    )
    assert search.tsquery(search.parse('a "b cde"*')) == "('a') & ('b' <-> 'cde':*)"


# The index follows every way requests leave a bin.


def index_queued(app, indexed_first: bool) -> None:
    """With ``indexed_first``, index the requests queued for search now (SQLite), as the server's
    indexer would a moment after they were stored; otherwise they stay queued until a search."""
    if indexed_first:
        with app.app_context():
            if db.engine.dialect.name == "sqlite":
                search.sqlite.catch_up()
            db.session.rollback()


def queued_ids(app) -> set[int]:
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            return set()
        ids = set(db.session.scalars(text("SELECT request_id FROM search_pending")).all())
        db.session.rollback()
    return ids


QUEUED_OR_INDEXED = pytest.mark.parametrize(
    "indexed_first", [False, True], ids=["still queued", "indexed"]
)


@QUEUED_OR_INDEXED
def test_deleting_a_request_takes_it_out_of_the_index(app, client, new_bin, indexed_first):
    bin_id = new_bin["id"]
    capture(client, bin_id, data="common alpha")
    capture(client, bin_id, data="common beta")
    index_queued(app, indexed_first)
    queued = SUITE_DATABASE == "sqlite" and not indexed_first
    assert queued_ids(app) == (stored_ids(app) if queued else set())
    assert client.delete(f"/api/v1/bins/{bin_id}/requests/1").status_code == 204
    assert found(client, bin_id, "alpha") == []
    assert found(client, bin_id, "common") == [2]
    assert indexed_ids(app) == stored_ids(app)


@QUEUED_OR_INDEXED
def test_a_reused_row_id_does_not_inherit_the_old_words(app, client, new_bin, indexed_first):
    # SQLite hands the highest deleted rowid out again; stale index entries would match it.
    bin_id = new_bin["id"]
    capture(client, bin_id, data="first")
    capture(client, bin_id, data="second alpha")
    index_queued(app, indexed_first)
    client.delete(f"/api/v1/bins/{bin_id}/requests/2")
    capture(client, bin_id, data="third beta")
    assert found(client, bin_id, "alpha") == []
    assert found(client, bin_id, "beta") == [3]
    assert indexed_ids(app) == stored_ids(app)


@sqlite_only
def test_only_the_indexers_own_connection_indexes_what_leaves_the_queue(app, client, new_bin):
    # The indexer indexes by taking requests off the queue, through a TEMP trigger of its own
    # connection (app/store/indexing.py). Anywhere else a queued request that is deleted leaves
    # the queue and must leave the index as it is; indexed there, it would stay in the index.
    bin_id = new_bin["id"]
    capture(client, bin_id, data="first alpha")
    index_queued(app, indexed_first=True)  # the indexer's connection exists now
    capture(client, bin_id, data="second beta")
    assert queued_ids(app) == {max(stored_ids(app))}
    with app.app_context():  # every idle connection of the pool, at once
        conns = [db.engine.raw_connection() for _ in range(max(1, db.engine.pool.checkedin()))]
        try:
            temp = "SELECT name FROM sqlite_temp_master WHERE type = 'trigger'"
            triggers = [c.cursor().execute(temp).fetchall() for c in conns]
        finally:
            for c in conns:
                c.close()
    assert triggers == [[]] * len(conns)
    assert client.delete(f"/api/v1/bins/{bin_id}/requests/2").status_code == 204
    assert queued_ids(app) == set()
    assert indexed_ids(app) == stored_ids(app)
    assert found(client, bin_id, "beta") == []
    assert found(client, bin_id, "alpha") == [1]


@QUEUED_OR_INDEXED
def test_clearing_a_bin_keeps_only_the_pinned_in_the_index(app, client, new_bin, indexed_first):
    bin_id = new_bin["id"]
    for i in range(5):
        capture(client, bin_id, data=f"word{i} common")
    index_queued(app, indexed_first)
    client.patch(f"/api/v1/bins/{bin_id}/requests/2", json={"pinned": True})
    assert client.delete(f"/api/v1/bins/{bin_id}/requests").json == {"deleted": 4}
    assert found(client, bin_id, "common") == [2]
    assert found(client, bin_id, "word4") == []
    assert indexed_ids(app) == stored_ids(app)
    client.delete(f"/api/v1/bins/{bin_id}/requests?include_pinned=true")
    assert found(client, bin_id, "common") == []
    assert indexed_ids(app) == set()


def test_retention_drops_requests_from_the_index(app, client, new_bin):
    bin_id = new_bin["id"]
    client.patch(f"/api/v1/bins/{bin_id}", json={"max_requests": 3})
    for i in range(1, 7):
        capture(client, bin_id, data=f"common word{i}")
    assert found(client, bin_id, "common") == [6, 5, 4]
    assert found(client, bin_id, "word1") == []
    assert indexed_ids(app) == stored_ids(app)
    assert len(indexed_ids(app)) == 3


@QUEUED_OR_INDEXED
def test_deleting_and_expiring_bins_empties_the_index(app, client, new_bin, indexed_first):
    kept = client.post("/api/v1/bins").json["id"]
    capture(client, new_bin["id"], data="gone")
    capture(client, kept, data="kept")
    index_queued(app, indexed_first)
    assert client.delete(f"/api/v1/bins/{new_bin['id']}").status_code == 204
    assert len(indexed_ids(app)) == 1
    capture(client, kept, data="kept too")
    with app.app_context():
        assert bins.prune(clock.now() + timedelta(days=365)) == [kept]
    assert indexed_ids(app) == set()


def test_rows_written_by_plain_sql_are_indexed_and_unindexed(app, client, new_bin):
    """A writer that knows nothing of search (a bulk load, the next capture path) keeps it."""
    bin_id = new_bin["id"]
    with app.app_context():
        conn = db.session.connection()
        conn.execute(
            text(
                "INSERT INTO requests (id, bin_id, seq, method, path, query_string, body_size,"
                " received_at, status, rejected, pinned) VALUES (1000, :bin, 1, 'PATCH',"
                " '/raw/path', 'q=sqlwriter', 5, :now, 200, false, false)"
            ),
            {"bin": bin_id, "now": f"{clock.now():%Y-%m-%d %H:%M:%S.%f}"},
        )
        conn.execute(
            text(
                "INSERT INTO payloads (request_id, url, http_version, headers, body)"
                " VALUES (1000, 'http://x/raw/path', 'HTTP/1.1', :headers, :body)"
            ),
            {"headers": json.dumps([["X-Writer", "plain SQL"]]), "body": b"bulk body"},
        )
        db.session.commit()
    assert found(client, bin_id, "sqlwriter") == [1]
    assert found(client, bin_id, '"plain sql" bulk patch') == [1]
    with app.app_context():
        db.session.execute(text("DELETE FROM requests WHERE id = 1000"))
        db.session.commit()
    assert found(client, bin_id, "sqlwriter") == []
    assert indexed_ids(app) == stored_ids(app)


@QUEUED_OR_INDEXED
def test_changing_stored_rows_with_sql_reindexes_them(app, client, new_bin, indexed_first):
    """Captured data is never changed by the app; if a script does, search follows."""
    bin_id = new_bin["id"]
    capture(client, bin_id, data="before words")
    capture(client, bin_id, data="other request")
    index_queued(app, indexed_first)
    with app.app_context():
        (request_id,) = db.session.execute(
            text("SELECT id FROM requests WHERE bin_id = :b AND seq = 1"), {"b": bin_id}
        ).one()
        db.session.execute(
            text("UPDATE payloads SET body = :body WHERE request_id = :i"),
            {"body": b"after words", "i": request_id},
        )
        db.session.execute(
            text("UPDATE requests SET path = '/moved' WHERE id = :i"), {"i": request_id}
        )
        db.session.commit()
    assert found(client, bin_id, "before") == []
    assert found(client, bin_id, "after moved") == [1]
    assert found(client, bin_id, "other") == [2]
    assert_indexed_as_the_view_says(app, bin_id, 1)
    assert indexed_ids(app) == stored_ids(app)


def test_upgrading_indexes_what_was_stored_before(app, client, new_bin):
    capture(client, new_bin["id"], "/before", data="stored before search existed")
    with app.app_context():
        downgrade(revision="0002")
    assert stored_ids(app)
    with app.app_context():
        upgrade()
    assert found(client, new_bin["id"], "existed") == [1]
    assert indexed_ids(app) == stored_ids(app)


def test_the_server_indexes_a_burst_without_waiting_for_a_search(server):
    """Under gunicorn the capture writer indexes what it queued for search a moment later
    (SQLite; PostgreSQL indexes each row as it is inserted)."""
    if SUITE_DATABASE != "sqlite":
        pytest.skip("only SQLite queues requests for indexing")
    bin_id = server.create_bin()["id"]

    def send(i: int) -> int:
        response = requests.post(f"{server.url}/h/{bin_id}", data=f"burst word{i}", timeout=10)
        return response.status_code

    with ThreadPoolExecutor(16) as pool:
        assert set(pool.map(send, range(200))) == {200}
    conn = sqlite3.connect(f"file:{server.workdir / 'hookscope.db'}?mode=ro", uri=True)
    try:
        deadline = time.monotonic() + 10
        while conn.execute("SELECT count(*) FROM search_pending").fetchone()[0]:
            assert time.monotonic() < deadline, "the queued requests were never indexed"
            time.sleep(0.05)
        conn.execute("CREATE VIRTUAL TABLE temp.v USING fts5vocab(main, request_search, instance)")
        ids = [r[0] for r in conn.execute("SELECT id FROM requests WHERE bin_id = ?", (bin_id,))]
        assert len(ids) == 200
        marks = ",".join("?" * len(ids))
        indexed = conn.execute(
            f"SELECT count(DISTINCT doc) FROM temp.v WHERE doc IN ({marks})",  # noqa: S608
            ids,
        ).fetchone()[0]
    finally:
        conn.close()
    assert indexed == 200
    response = requests.get(
        f"{server.url}/api/v1/bins/{bin_id}/requests",
        params={"q": "word7"},
        auth=server.auth,
        timeout=10,
    )
    (match,) = response.json()["requests"]
    raw = requests.get(
        f"{server.url}/api/v1/bins/{bin_id}/requests/{match['seq']}/raw",
        auth=server.auth,
        timeout=10,
    )
    assert raw.content == b"burst word7"


def _queue_in_bulk(database, bin_id: str, first: int, count: int) -> None:
    """Write requests straight into the database, as a bulk import would: queued for search."""
    conn = sqlite3.connect(database, isolation_level=None)
    seqs = range(first, first + count)
    try:
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO requests (id, bin_id, seq, method, path, query_string, content_type,"
            " body_size, remote_addr, received_at, status, rejected, pinned)"
            " VALUES (?, ?, ?, 'POST', '/bulk', '', 'text/plain', 16, '127.0.0.1',"
            " '2026-11-23 12:00:00.000000', 200, 0, 0)",
            ((1_000_000 + seq, bin_id, seq) for seq in seqs),
        )
        conn.executemany(
            "INSERT INTO payloads (request_id, url, http_version, headers, body)"
            " VALUES (?, 'http://x/bulk', 'HTTP/1.1', '[]', ?)",
            ((1_000_000 + seq, b"bulk item%d" % seq) for seq in seqs),
        )
        last = first + count - 1
        conn.execute(
            "UPDATE bins SET last_seq = ?, request_count = ? WHERE id = ?", (last, last, bin_id)
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


def _pending(database) -> int:
    conn = sqlite3.connect(database)
    try:
        return conn.execute("SELECT count(*) FROM search_pending").fetchone()[0]
    finally:
        conn.close()


def test_a_search_that_indexes_a_long_queue_leaves_the_server_serving(fresh_server):
    """A search first indexes whatever is queued. A long queue (here requests written straight
    into the database, as a bulk import would) is indexed in the writer's native thread, a batch
    at a time: the worker goes on answering meanwhile. On the event loop it answered nothing
    until the search was done, and gunicorn killed it after 30 s (a million queued: a 500).

    The queue is sized from this machine's own speed: a first search indexes a short queue and
    times it, and the long queue is made to last as long as many answers to other requests.
    What is asserted is order, not speed: other requests were answered while the queue was
    still partly indexed."""
    if SUITE_DATABASE != "sqlite":
        pytest.skip("only SQLite queues requests for indexing")
    server = fresh_server.start()
    database = server.workdir / "hookscope.db"
    bin_id = server.create_bin()["id"]

    def search(q: str) -> requests.Response:
        url = f"{server.url}/api/v1/bins/{bin_id}/requests"
        return requests.get(url, params={"q": q}, auth=server.auth, timeout=300)

    def probe() -> float:
        started = time.monotonic()
        assert requests.get(f"{server.url}/healthz", timeout=60).status_code == 200
        return time.monotonic() - started

    probe_seconds = sorted(probe() for _ in range(9))[4]
    calibration = 5_000
    _queue_in_bulk(database, bin_id, 1, calibration)
    started = time.monotonic()
    assert [r["seq"] for r in search(f"item{calibration}").json()["requests"]] == [calibration]
    per_request = (time.monotonic() - started) / calibration
    # Long enough for 100 probes, and never shorter than two seconds of indexing.
    queued = max(calibration, int(max(2.0, 100 * probe_seconds) / per_request))
    _queue_in_bulk(database, bin_id, calibration + 1, queued)
    assert _pending(database) == queued
    last = calibration + queued

    during = 0  # probes answered while the queue was partly indexed
    with ThreadPoolExecutor(1) as pool:
        searching = pool.submit(search, f"item{last}")
        while not searching.done():
            probe()
            if 0 < _pending(database) < queued:
                during += 1
        found = searching.result()
    assert found.status_code == 200
    assert [r["seq"] for r in found.json()["requests"]] == [last]
    assert _pending(database) == 0
    assert during >= 3, (
        f"only {during} other requests were answered while {queued:,} queued requests were"
        " indexed: the server stopped serving while the search indexed"
    )


def test_the_streamed_index_sql_says_what_migration_0003_says():
    """app/store/indexing.py repeats a few of the view's terms rather than import a migration."""
    import importlib

    from app.store import indexing

    fts = importlib.import_module("app.migrations.versions.0003_full_text_search")
    assert (indexing.BODY_LIMIT, indexing.FORM, indexing.ESCAPES) == (
        fts.BODY_LIMIT,
        fts.FORM,
        fts.ESCAPES,
    )
    assert f"substr(p.body, 1, {indexing.BODY_LIMIT})" in fts.SQLITE_VIEW
    assert indexing.unescaped("x") == fts.unescaped("x")
