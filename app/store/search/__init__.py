"""Full-text search within a bin: the query language, and reading the database's own index.

The index is made and kept by the database (migration 0003: FTS5 on SQLite, tsvector + GIN on
PostgreSQL, both fed by triggers), so every writer keeps it right. On SQLite new requests are
queued by the trigger and indexed in batches (migration 0004): the capture writer does it after
bursts (app/store/indexer.py), and every search first indexes what is still queued
(``sqlite.catch_up``), so no stored request is missed. This module turns what a user typed into
a query for the index and hands it to the engine's reader (``sqlite``, ``postgres``), which reads
one page of matches, newest first, in the list's keyset shape.

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

from app.domain.bins import Invalid
from app.extensions import db
from app.store.requests import Page

from . import postgres, sqlite

# How much of each body the index holds (migration 0003 says why); said here for readers.
INDEXED_BODY_BYTES = 65536
MAX_QUERY_CHARS = 500
MAX_TERMS = 16
MIN_PREFIX = 3
# A phrase in quotes (closed or running to the end) with an optional * after it, or a bare word.
_TERM = re.compile(r'"([^"]*)(?:"|$)(\*?)|([^\s"]+)')
_SEARCHED_COLUMNS = "{target headers body}"  # every FTS5 column except the bin's


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
    """List the bin's requests that match, newest first, keyset-paginated like ``bins.page``.

    On PostgreSQL a page may hold fewer than ``limit`` matches (none, even) when the search
    stopped on its budget; ``next_before`` then says where it stopped and ``searched_down_to``
    is set (app/store/search/postgres.py).
    """
    if db.engine.dialect.name == "sqlite":
        sqlite.catch_up()
        match = fts5_query(bin_id, terms)
        read = sqlite.rows
    else:
        match = tsquery(terms)
        read = postgres.rows
    found = read(bin_id, match, limit + 1, before, method and method.upper(), since, until)
    rows = found.rows[:limit]
    summaries = [r.to_summary() for r in rows]
    if len(found.rows) > limit:
        return Page(summaries, rows[-1].seq)
    if found.searched_down_to is not None:
        return Page(summaries, found.searched_down_to, found.searched_down_to)
    return Page(summaries, None)
