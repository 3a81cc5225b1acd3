"""Reading PostgreSQL's tsvector + GIN index: one page of a bin's matches, newest first."""

from __future__ import annotations

from sqlalchemy import text

from ..extensions import db
from ..models import CapturedRequest
from .rows import COLUMNS, filters, read, typed

# How many of the newest requests to test one by one before asking the GIN index.
RECENT_WINDOW = 5000


def rows(bin_id, tsquery, limit, before, method, since, until) -> list[CapturedRequest]:
    """Read matches in two steps, so neither a common nor a rare word reads the whole bin.

    A GIN index cannot return rows newest first, and the planner cannot tell how many rows
    match a phrase or words that rarely meet, so it picks badly (seconds, measured) when left to
    choose. First the newest RECENT_WINDOW requests are tested one by one: a common word fills
    the page there. Only when it does not, the GIN index finds the remaining matches (few, as
    the window showed), which are sorted.
    """
    params: dict[str, object] = {"bin_id": bin_id}
    conditions = ["requests.bin_id = :bin_id"]
    if before is not None:
        conditions.append("requests.seq < :before")
        params["before"] = before
    conditions += filters(method, since, until, params)
    where = " AND ".join(conditions)
    # The tsvector is read by a scalar subquery, once per row in the window's order: written as a
    # join, the planner chose a hash join over every payload when it guessed few matches.
    recent = read(
        f"SELECT {COLUMNS} FROM (SELECT * FROM requests WHERE {where}"  # noqa: S608 - fixed text
        " ORDER BY seq DESC LIMIT :window) AS requests"
        " WHERE (SELECT search_document FROM payloads WHERE request_id = requests.id)"
        " @@ to_tsquery('simple', :tsquery)"
        " ORDER BY requests.seq DESC LIMIT :limit",
        {**params, "tsquery": tsquery, "window": RECENT_WINDOW, "limit": limit},
    )
    if len(recent) == limit:
        return recent
    window_end = db.session.scalar(
        text(
            f"SELECT seq FROM requests WHERE {where}"  # noqa: S608 - fixed text
            " ORDER BY seq DESC LIMIT 1 OFFSET :skip"
        ).bindparams(*typed({**params, "skip": RECENT_WINDOW - 1}))
    )
    if window_end is None:
        return recent  # the window held every request there is
    # The bin's own lexeme ("#<bin id>", which no searched word can be) makes the GIN index
    # return only this bin's matches.
    older = read(
        "WITH matches AS MATERIALIZED (SELECT request_id FROM payloads WHERE search_document"  # noqa: S608 - fixed text
        " @@ (to_tsquery('simple', :tsquery) && CAST(:bin_lexeme AS tsquery)))"
        f" SELECT {COLUMNS} FROM matches JOIN requests ON requests.id = matches.request_id"
        f" WHERE {where} AND requests.seq < :window_end"
        " ORDER BY requests.seq DESC LIMIT :limit",
        {
            **params,
            "tsquery": tsquery,
            "bin_lexeme": f"'#{bin_id}'",
            "window_end": window_end,
            "limit": limit - len(recent),
        },
    )
    return recent + older
