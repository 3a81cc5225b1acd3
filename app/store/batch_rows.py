"""The rows a batch writes, as plain tuples; shared by both writers.

Each capture's summary with its request's and payload's columns (``row``), the answers stored
with their captures (``answer_rows``), the auto-forward tries stored with them
(``forward_rows``, told to the results by ``note_forwards``), and any of these as columns for
PostgreSQL's unnest() (``columns``). The batch they come from: app/store/batch.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from app.domain.shapes import SummaryDict, summary
from app.store.batch import Stored, naive_utc


def row(stored: Stored, sqlite: bool = False) -> tuple[SummaryDict, tuple, tuple]:
    """A capture's summary, its request's columns after (id, bin_id, seq), and its payload's
    after request_id."""
    item, snap = stored.item, stored.item.snap
    # Formatted once for the summary and the row (shapes.isoformat, without its "Z").
    naive = naive_utc(snap.received_at)
    received_at = naive.isoformat(timespec="microseconds")
    decided = stored.decided
    if decided is None:
        status, delivery_id = (401 if stored.rejected else 200), None
    else:
        status, delivery_id = decided.status, decided.delivery_id
    size = len(snap.body)
    request = (
        snap.method,
        snap.path,
        snap.query_string,
        snap.content_type,
        size,
        snap.remote_addr,
        # The form SQLAlchemy's DateTime column stores on SQLite.
        received_at.replace("T", " ") if sqlite else naive,
        status,
        stored.rejected,
        delivery_id,
        item.size,
    )
    payload = (snap.url, snap.http_version, item.headers_json, snap.body)
    described = summary(
        item.bin_id,
        stored.seq,
        snap.method,
        snap.path,
        snap.query_string,
        snap.content_type,
        size,
        snap.remote_addr,
        f"{received_at}Z",
        status,
        stored.rejected,
        False,
        delivery_id,
    )
    return described, request, payload


def answer_rows(stored: list[Stored]) -> list[tuple[Stored, str, datetime | None]]:
    """The captures whose answer is stored with them (not the default), with its record."""
    return [
        (done, done.decided.record, done.decided.sent_at)
        for done in stored
        if done.decided is not None and done.decided.record is not None
    ]


def forward_rows(stored: list[Stored], lease_seconds: float) -> list[tuple]:
    """One pending try per accepted capture and target: (stored, target, due, leased until).

    Due at once, and leased to the process storing it, which sends it straight after the
    commit; a lease that runs out (the process died) lets any process take it.
    """
    rows = []
    for done in stored:
        if not done.targets:
            continue
        due = naive_utc(done.item.snap.received_at)
        until = due + timedelta(seconds=lease_seconds)
        rows += [(done, target, due, until) for target in done.targets]
    return rows


def note_forwards(rows: list[tuple], attempt_ids: list[int]) -> None:
    """Tell each capture's result the tries stored for it (after ``settle``)."""
    for (done, target, _due, _until), attempt_id in zip(rows, attempt_ids, strict=True):
        if done.item.result is not None:
            done.item.result.forwards.append((attempt_id, target))


def columns(rows: list[tuple]) -> list[list]:
    """Rows as one list per column, for PostgreSQL's unnest()."""
    return [list(column) for column in zip(*rows, strict=True)]
