"""Reading PostgreSQL's tsvector + GIN index: a bin's matches newest first, in bounded work.

GIN finds the documents that hold a search's words, but keeps neither their positions nor any
order. So matches come back unsorted, and a phrase or a prefix is checked document by document
afterwards (the "recheck") in every document that holds its words. When those words are common
and never stand together ("main heads" in a bin of GitHub pushes) that is a large part of the bin:
0.7 s on a million requests (bench/README.md). SQLite's FTS5 keeps positions and needs none of
this. Here one call reads the bin newest first, a part at a time, and may stop before its page is
full:

1. The newest RECENT_WINDOW requests below ``before`` are tested one by one (the list's filters,
   then the words): a common word fills the page there and the GIN index is never asked.
2. Then the bin is searched in ranges of request ids going back (ids grow with seq within a bin),
   so the planner can AND a range with the GIN bitmap and recheck nothing outside it. The first
   range holds HOOKSCOPE_SEARCH_CHUNK_REQUESTS requests and always runs, so every call gets
   further: through the index if that answers within INDEX_TRY_MS, else walked by primary key,
   each document tested (a cost that follows the range's size whatever the planner guesses).
3. Later ranges run while the call is within HOOKSCOPE_SEARCH_BUDGET_MS of its start, each under a
   ``statement_timeout`` of the time left (a range it cancels is dropped whole), each GROWTH
   times larger than the last when that took at most half the time left.

A call that stops early says how far back it searched (``Found.searched_down_to``): every request
from that seq up, below ``before``, has been searched, and ``before=<that seq>`` goes on. Rare
words cost the index little per range, so they still cover a million requests in one call; the
worst case costs the window, INDEX_TRY_MS and a walk of the first range.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from app.domain.models import CapturedRequest
from app.extensions import db

from .rows import COLUMNS, Found, filters, read, typed

# How many of the newest requests to test one by one before asking the GIN index (at most one
# range's worth).
RECENT_WINDOW = 5000
# How much larger the next range is than one that took at most half the time left.
GROWTH = 8
# How long the first range may take through the GIN index before it is walked instead, and the
# least time a walk is given (a walk of 50,000 requests took 45-90 ms; on a busy database, or
# with documents far larger than measured, it is cancelled and the call ends after its window).
INDEX_TRY_MS = 40
WALK_MIN_MS = 120
# The planner's plan for a range through the index cannot be trusted. It guesses how many
# documents hold all the words by multiplying their frequencies: far too few for words that come
# together (244 guessed, 125,000 true for four words of one template), or for a word found only
# in this bin (multiplied by the bin's share of the table). Guessing few, it rechecks every
# candidate in the bin instead of ANDing the range: 0.65 s measured on a million requests. So
# ranges through the index run under a statement_timeout, and a walk forbids that plan.
WALK = {"enable_bitmapscan": "off", "enable_seqscan": "off"}
QUERY_CANCELED = "57014"  # PostgreSQL's SQLSTATE for a statement that statement_timeout stopped


def rows(bin_id, tsquery, limit, before, method, since, until) -> Found:
    """Read up to ``limit`` matches of ``tsquery`` with ``seq < before``, newest first."""
    started = time.monotonic()
    chunk = current_app.config["HOOKSCOPE_SEARCH_CHUNK_REQUESTS"]
    budget_ms = current_app.config["HOOKSCOPE_SEARCH_BUDGET_MS"]
    params: dict[str, object] = {"bin_id": bin_id}
    filtered = ["requests.bin_id = :bin_id", *filters(method, since, until, params)]
    newest = "bin_id = :bin_id" + ("" if before is None else " AND seq < :before")
    window = {"window": min(RECENT_WINDOW, chunk), **({} if before is None else {"before": before})}
    # The window is the newest requests, filtered afterwards: filtering first would walk the
    # whole bin for a method that no request has. The tsvector is read by a scalar subquery, once
    # per row in the window's order: written as a join, the planner chose a hash join over every
    # payload when it guessed few matches.
    found = read(
        f"SELECT {COLUMNS} FROM (SELECT * FROM requests WHERE {newest}"  # noqa: S608 - fixed text
        f" ORDER BY seq DESC LIMIT :window) AS requests WHERE {' AND '.join(filtered)}"
        " AND (SELECT search_document FROM payloads WHERE request_id = requests.id)"
        " @@ to_tsquery('simple', :tsquery)"
        " ORDER BY requests.seq DESC LIMIT :limit",
        {**params, **window, "tsquery": tsquery, "limit": limit},
    )
    if len(found) == limit:
        return Found(found)
    window_end = _scalar(
        f"SELECT seq FROM requests WHERE {newest}"  # noqa: S608 - fixed text
        " ORDER BY seq DESC LIMIT 1 OFFSET :window - 1",
        {"bin_id": bin_id, **window},
    )
    if window_end is None:
        return Found(found)  # the window held every request there is
    oldest = _scalar("SELECT min(seq) FROM requests WHERE bin_id = :bin_id", {"bin_id": bin_id})
    scan = _Ranges(bin_id, tsquery, " AND ".join(filtered), params)
    searched_to, size, walk, left_ms = window_end, chunk, False, 0.0
    while searched_to > oldest:
        need = limit - len(found)
        if searched_to == window_end:
            # The first range always runs: through the index if it answers quickly, else walked.
            part = scan.read(searched_to, size, need, INDEX_TRY_MS)
            if part is None:
                walk = True
                timeout_ms = max(budget_ms - _since(started), WALK_MIN_MS)
                part = scan.read(searched_to, size, need, timeout_ms, walk=True)
        else:
            part = scan.read(searched_to, size, need, left_ms, walk=walk)
        if part is None:
            break  # cancelled by its timeout: the search got as far as the range before
        found += part.rows
        if len(found) == limit:
            return Found(found)
        searched_to = part.low
        left_ms = budget_ms - _since(started)
        if left_ms <= part.ms and searched_to > oldest:
            break  # a range like the last one would not fit in the time left
        if not walk and part.ms * 2 <= left_ms:
            size *= GROWTH  # an index's cost grows more slowly than its range; a timeout guards
    else:
        return Found(found)  # searched down to the bin's oldest request
    return Found(found, searched_down_to=searched_to)


@dataclass(frozen=True)
class _Part:
    low: int  # the lowest seq the range covered
    rows: list[CapturedRequest]
    ms: float


class _Ranges:
    """Search one range of a bin's requests at a time through the GIN index."""

    def __init__(self, bin_id: str, tsquery: str, where: str, params: dict[str, object]) -> None:
        self.where = where
        # The bin's own lexeme ("#<bin id>", which no searched word can be) makes the GIN index
        # return only this bin's matches.
        self.params = {**params, "tsquery": tsquery, "bin_lexeme": f"'#{bin_id}'"}

    def read(
        self, below: int, size: int, limit: int, timeout_ms: float, walk: bool = False
    ) -> _Part | None:
        """Search the ``size`` seqs that end at the newest request below ``below``.

        Through the GIN index, or walking the range by primary key and testing each document
        (``walk``: the only plan left without bitmap and sequential scans). None when its timeout
        cancelled it; otherwise the matches and where the range began.
        """
        started = time.monotonic()
        bounds = db.session.execute(
            text(
                "SELECT top.seq, top.id, (SELECT id FROM requests WHERE bin_id = :bin_id"
                " AND seq > top.seq - :size ORDER BY seq LIMIT 1)"
                " FROM (SELECT seq, id FROM requests WHERE bin_id = :bin_id AND seq < :below"
                " ORDER BY seq DESC LIMIT 1) AS top"
            ),
            {"bin_id": self.params["bin_id"], "size": size, "below": below},
        ).one()
        top, top_id, low_id = bounds
        low = top - size + 1
        sql = (
            "WITH matches AS MATERIALIZED (SELECT request_id FROM payloads"  # noqa: S608 - fixed text
            " WHERE request_id BETWEEN :low_id AND :top_id AND search_document"
            " @@ (to_tsquery('simple', :tsquery) && CAST(:bin_lexeme AS tsquery)))"
            f" SELECT {COLUMNS} FROM matches JOIN requests ON requests.id = matches.request_id"
            f" WHERE {self.where} AND requests.seq BETWEEN :low AND :top"
            " ORDER BY requests.seq DESC LIMIT :limit"
        )
        params = {**self.params, "low_id": low_id, "top_id": top_id, "low": low, "top": top}
        params["limit"] = limit
        found = _within(timeout_ms, lambda: read(sql, params), WALK if walk else {})
        return None if found is None else _Part(low, found, _since(started))


def _within(timeout_ms: float, run, settings: dict[str, str]):
    """Run ``run()`` under a statement_timeout, without JIT and with ``settings``; None if
    PostgreSQL cancelled it.

    JIT compiles plans the planner thinks costly (a large range) and cannot be interrupted while
    it does; these statements are short and gain nothing from it.
    """
    settings = {**settings, "statement_timeout": f"{max(1, int(timeout_ms))}ms", "jit": "off"}
    try:
        with db.session.begin_nested():  # a cancelled statement must not end the transaction
            previous = _configure(settings)
            result = run()
            _configure(previous)
    except OperationalError as err:
        if getattr(err.orig, "sqlstate", None) != QUERY_CANCELED:
            raise
        return None  # the savepoint's rollback put the settings back
    return result


def _configure(settings: dict[str, str]) -> dict[str, str]:
    """Set PostgreSQL settings until the transaction ends; return what they were."""
    names = list(settings)
    sql = ", ".join(
        f"current_setting(:name{i}), set_config(:name{i}, :value{i}, true)"
        for i in range(len(names))
    )
    params = {f"name{i}": n for i, n in enumerate(names)}
    params |= {f"value{i}": settings[n] for i, n in enumerate(names)}
    row = db.session.execute(text(f"SELECT {sql}"), params).one()  # noqa: S608 - fixed text
    return {n: row[2 * i] for i, n in enumerate(names)}


def _since(started: float) -> float:
    return (time.monotonic() - started) * 1000


def _scalar(sql: str, params: dict[str, object]):
    return db.session.scalar(text(sql).bindparams(*typed(params)))
