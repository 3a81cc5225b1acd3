"""Full-text search within a bin: the query language, and reading the database's own index.

The index is made and kept by the database (migration 0003: FTS5 on SQLite, tsvector + GIN on
PostgreSQL, both fed by triggers), so every writer keeps it right. On SQLite new requests are
queued by the trigger and indexed in batches (migration 0004, ``recording.index_pending``): the
capture writer does it after bursts, and every search first indexes what is still queued, so no
stored request is missed. This module turns what a user typed into a query for the index and
reads one page of matches, newest first, in the list's keyset shape.

The query language, all of it: words are ANDed; "a quoted phrase" matches its words in order; a
trailing * makes the last word a prefix (``stri*``, ``"checkout fin"*``). Case does not matter. A
word is a run of letters and digits and anything else separates words, so ``user@example.com``
is the phrase "user example com". There is no OR, NOT or column filter, and nothing a user types
reaches the database's own query syntax: each word is rebuilt from letters and digits only.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select, text

from . import recording, storage
from .bins import Invalid, Page
from .extensions import db
from .models import CapturedRequest, UTCDateTime

# How much of each body the index holds (migration 0003 says why); said here for readers.
INDEXED_BODY_BYTES = 65536
MAX_QUERY_CHARS = 500
MAX_TERMS = 16
MIN_PREFIX = 3
# A phrase in quotes (closed or running to the end) with an optional * after it, or a bare word.
_TERM = re.compile(r'"([^"]*)(?:"|$)(\*?)|([^\s"]+)')
_SEARCHED_COLUMNS = "{target headers body}"  # every FTS5 column except the bin's
REQUESTS = CapturedRequest.__table__


@dataclass(frozen=True)
class Term:
    """A word or a phrase: words that must follow each other; the last may be a prefix."""

    words: tuple[str, ...]
    prefix: bool = False


def _is_word_char(char: str) -> bool:
    # The characters SQLite's unicode61 tokenizer keeps in words: letters, digits (categories
    # L* and N*) and private-use characters (Co).
    return char.isalnum() or unicodedata.category(char) == "Co"


def words_of(text_: str) -> tuple[str, ...]:
    """Split text into words: runs of letters and digits."""
    words, current = [], []
    for char in text_:
        if _is_word_char(char):
            current.append(char)
        elif current:
            words.append("".join(current))
            current = []
    if current:
        words.append("".join(current))
    return tuple(words)


def _refuse(message: str) -> Invalid:
    return Invalid("bad_query", message)


def parse(query: str) -> tuple[Term, ...]:
    """Read a search query into terms, or raise ``Invalid`` saying what cannot be searched."""
    if len(query) > MAX_QUERY_CHARS:
        raise _refuse(f"q is {len(query):,} characters long; a search is at most {MAX_QUERY_CHARS}")
    terms = []
    for match in _TERM.finditer(query):
        phrase, star_after_phrase, word = match.groups()
        raw = phrase if word is None else word
        prefix = bool(star_after_phrase) or raw.rstrip().endswith("*")
        words = words_of(raw)
        if not words:
            continue  # punctuation only: nothing in it can match
        if prefix and len(words[-1]) < MIN_PREFIX:
            raise _refuse(
                f"a prefix search needs at least {MIN_PREFIX} letters or digits before the *"
                f" ({words[-1]}* is too short)"
            )
        terms.append(Term(words, prefix))
    if not terms:
        raise _refuse(
            "q has no letters or digits to search for; words are letters and digits,"
            ' "quoted phrases" match in order, and a trailing * matches a prefix'
        )
    if len(terms) > MAX_TERMS:
        raise _refuse(f"q has {len(terms)} words or phrases; a search takes at most {MAX_TERMS}")
    return tuple(terms)


def fts5_query(bin_id: str, terms: tuple[Term, ...]) -> str:
    """Write terms as an FTS5 MATCH expression limited to one bin.

    Words hold only letters and digits, so quoting them needs no escaping; the bin's column
    holds the hex of its id as a single token.
    """
    parts = [f'bin : "{bin_id.encode().hex()}"']
    for term in terms:
        star = " *" if term.prefix else ""
        parts.append(f'{_SEARCHED_COLUMNS} : "{" ".join(term.words)}"{star}')
    return " AND ".join(parts)


def tsquery(terms: tuple[Term, ...]) -> str:
    """Write terms in PostgreSQL's to_tsquery syntax: phrases with <->, terms with &."""

    def phrase(term: Term) -> str:
        # Words hold no quote or backslash; escaping them anyway costs nothing.
        lexemes = ["'" + w.replace("\\", "\\\\").replace("'", "''") + "'" for w in term.words]
        if term.prefix:
            lexemes[-1] += ":*"
        return "(" + " <-> ".join(lexemes) + ")"

    return " & ".join(phrase(term) for term in terms)


def page(
    bin_id: str,
    terms: tuple[Term, ...],
    *,
    limit: int,
    before: int | None = None,
    method: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page:
    """List the bin's requests that match, newest first, keyset-paginated like ``bins.page``."""
    if db.engine.dialect.name == "sqlite":
        catch_up()
        read = _sqlite_rows
    else:
        read = _postgres_rows
    rows = read(bin_id, terms, limit + 1, before, method and method.upper(), since, until)
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([r.to_summary() for r in rows], rows[-1].seq if more else None)


def catch_up() -> None:
    """Index every queued request (SQLite), so the session's next read sees them searchable.

    Ends the session's current transaction: a read transaction keeps the snapshot it began with.
    """
    if not db.session.scalar(text("SELECT EXISTS (SELECT 1 FROM search_pending)")):
        return
    storage.begin_write()
    cur = db.session.connection().connection.cursor()
    while recording.index_pending(cur) == recording.INDEX_BATCH:
        pass
    db.session.commit()


COLUMNS = ", ".join(f"requests.{c.name}" for c in REQUESTS.c)
# PostgreSQL: how many of the newest requests to test one by one before asking the GIN index.
RECENT_WINDOW = 5000


def _read(sql: str, params: dict[str, object]) -> list[CapturedRequest]:
    statement = text(sql).bindparams(*_typed(params)).columns(*REQUESTS.c)
    return list(db.session.scalars(select(CapturedRequest).from_statement(statement)))


def _sqlite_rows(bin_id, terms, limit, before, method, since, until) -> list[CapturedRequest]:
    # CROSS JOIN makes SQLite walk the index newest first (by rowid, which is requests.id) and
    # stop after `limit` matches, instead of reading every request of the bin. Within a bin ids
    # grow with seq: both are handed out in the capture's transaction, which holds the bin's
    # row (or SQLite's write lock). The cursor becomes an id bound the index can seek to, and
    # seq < before still holds exactly.
    conditions = ["request_search MATCH :match", "requests.bin_id = :bin_id"]
    params: dict[str, object] = {
        "match": fts5_query(bin_id, terms),
        "bin_id": bin_id,
        "limit": limit,
    }
    if before is not None:
        conditions += [
            "request_search.rowid <= (SELECT id FROM requests WHERE bin_id = :bin_id"
            " AND seq < :before ORDER BY seq DESC LIMIT 1)",
            "requests.seq < :before",
        ]
        params["before"] = before
    conditions += _filters(method, since, until, params)
    return _read(
        f"SELECT {COLUMNS}"  # noqa: S608 - fixed text; values are bound
        " FROM request_search CROSS JOIN requests ON requests.id = request_search.rowid"
        f" WHERE {' AND '.join(conditions)}"
        " ORDER BY request_search.rowid DESC LIMIT :limit",
        params,
    )


def _postgres_rows(bin_id, terms, limit, before, method, since, until) -> list[CapturedRequest]:
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
    conditions += _filters(method, since, until, params)
    where = " AND ".join(conditions)
    # The tsvector is read by a scalar subquery, once per row in the window's order: written as a
    # join, the planner chose a hash join over every payload when it guessed few matches.
    recent = _read(
        f"SELECT {COLUMNS} FROM (SELECT * FROM requests WHERE {where}"  # noqa: S608 - fixed text
        " ORDER BY seq DESC LIMIT :window) AS requests"
        " WHERE (SELECT search_document FROM payloads WHERE request_id = requests.id)"
        " @@ to_tsquery('simple', :tsquery)"
        " ORDER BY requests.seq DESC LIMIT :limit",
        {**params, "tsquery": tsquery(terms), "window": RECENT_WINDOW, "limit": limit},
    )
    if len(recent) == limit:
        return recent
    window_end = db.session.scalar(
        text(
            f"SELECT seq FROM requests WHERE {where}"  # noqa: S608 - fixed text
            " ORDER BY seq DESC LIMIT 1 OFFSET :skip"
        ).bindparams(*_typed({**params, "skip": RECENT_WINDOW - 1}))
    )
    if window_end is None:
        return recent  # the window held every request there is
    # The bin's own lexeme ("#<bin id>", which no searched word can be) makes the GIN index
    # return only this bin's matches.
    older = _read(
        "WITH matches AS MATERIALIZED (SELECT request_id FROM payloads WHERE search_document"  # noqa: S608 - fixed text
        " @@ (to_tsquery('simple', :tsquery) && CAST(:bin_lexeme AS tsquery)))"
        f" SELECT {COLUMNS} FROM matches JOIN requests ON requests.id = matches.request_id"
        f" WHERE {where} AND requests.seq < :window_end"
        " ORDER BY requests.seq DESC LIMIT :limit",
        {
            **params,
            "tsquery": tsquery(terms),
            "bin_lexeme": f"'#{bin_id}'",
            "window_end": window_end,
            "limit": limit - len(recent),
        },
    )
    return recent + older


def _filters(method, since, until, params: dict[str, object]) -> list[str]:
    """The list's other filters, as SQL over ``requests`` with their values put in ``params``."""
    conditions = []
    if method:
        conditions.append("requests.method = :method")
        params["method"] = method
    if since is not None:
        conditions.append("requests.received_at >= :since")
        params["since"] = since
    if until is not None:
        conditions.append("requests.received_at < :until")
        params["until"] = until
    return conditions


def _typed(params: dict[str, object]) -> list:
    """Bind parameters, times through the column's type (naive UTC, as stored)."""
    return [
        bindparam(name, value, type_=UTCDateTime() if isinstance(value, datetime) else None)
        for name, value in params.items()
    ]
