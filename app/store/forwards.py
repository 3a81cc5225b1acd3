"""Auto-forward's rows at work: take due tries, record outcomes, hand back what was not sent.

Every statement runs on a DB-API connection the caller checked out, so that under gevent the
forwarder can run it in a native thread on SQLite (waiting for the write lock there stalls no
one) and on the event loop on PostgreSQL. A pending row belongs to the process whose lease on
it is running (``lease_until``); the capture's own transaction gives it to the process that
stored it, and ``claim`` gives expired or unleased due rows to whoever asks first, so each try
is sent by one process.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.store.batch import naive_utc

_CLAIM = """
UPDATE attempts SET lease_until = %s
WHERE id IN (
  SELECT id FROM attempts
  WHERE state = 'pending' AND due_at <= %s AND (lease_until IS NULL OR lease_until < %s)
  ORDER BY due_at LIMIT %s{lock}
) AND state = 'pending' AND (lease_until IS NULL OR lease_until < %s)
RETURNING id
"""
_CLAIMED = """
SELECT a.id, a.bin_id, a.target, a.method, a.try_number, r.path, r.query_string,
       p.headers, p.body
FROM attempts a JOIN requests r ON r.id = a.request_id JOIN payloads p ON p.request_id = r.id
WHERE a.id IN ({ids})
"""
_FINISH = """
UPDATE attempts SET state = 'done', lease_until = NULL, due_at = NULL, started_at = %s,
  finished_at = %s, url = %s, address = %s, status = %s, reason = %s, error = %s, message = %s,
  response_headers = %s{json}, response_body = %s, response_truncated = %s, timings = %s{json},
  retry_at = %s
WHERE id = %s
"""
_NEXT_TRY = """
INSERT INTO attempts (request_id, bin_id, kind, target, method, try_number, state, due_at,
                      reason, message, response_truncated, edited)
SELECT request_id, bin_id, kind, target, method, try_number + 1, 'pending', retry_at,
       '', '', %s, %s
FROM attempts WHERE id = %s AND retry_at IS NOT NULL
"""
_RELEASE = "UPDATE attempts SET lease_until = NULL WHERE id = %s AND state = 'pending'"


@dataclass(frozen=True)
class Claimed:
    """A due try taken from the table, with what it sends."""

    attempt_id: int
    bin_id: str
    target: str
    method: str
    try_number: int
    path: str
    query_string: str
    headers: list[list[str]]
    body: bytes


@dataclass(frozen=True)
class Finished:
    """A try's outcome, and when the next one is due (None: no more)."""

    attempt_id: int
    started_at: datetime
    finished_at: datetime
    columns: dict[str, Any]  # app/outbound/outcome.py's
    retry_at: datetime | None


def claim(conn: Any, now: datetime, lease_until: datetime, limit: int) -> list[Claimed]:
    """Take up to ``limit`` due tries nobody holds, until ``lease_until``; commit."""
    sqlite = _is_sqlite(conn)
    cur = conn.cursor()
    _begin(cur, sqlite)
    at, until = _time(now, sqlite), _time(lease_until, sqlite)
    lock = "" if sqlite else " FOR UPDATE SKIP LOCKED"
    cur.execute(_sql(_CLAIM.format(lock=lock), sqlite), (until, at, at, limit, at))
    ids = [row[0] for row in cur.fetchall()]
    rows = []
    if ids:
        marks = ", ".join(["%s"] * len(ids))
        cur.execute(_sql(_CLAIMED.format(ids=marks), sqlite), ids)
        rows = cur.fetchall()
    conn.commit()
    return [
        Claimed(r[0], r[1], r[2], r[3], r[4], r[5], r[6], _headers(r[7]), bytes(r[8])) for r in rows
    ]


def finish(conn: Any, finished: Sequence[Finished]) -> None:
    """Record tries' outcomes and add the next try of each one that is retried; commit."""
    sqlite = _is_sqlite(conn)
    cur = conn.cursor()
    _begin(cur, sqlite)
    cast = "" if sqlite else "::json"
    rows = []
    for done in finished:
        c = done.columns
        rows.append(
            (
                _time(done.started_at, sqlite),
                _time(done.finished_at, sqlite),
                c["url"],
                c["address"],
                c["status"],
                c["reason"],
                c["error"],
                c["message"],
                None if c["response_headers"] is None else json.dumps(c["response_headers"]),
                c["response_body"],
                c["response_truncated"],
                json.dumps(c["timings"]),
                None if done.retry_at is None else _time(done.retry_at, sqlite),
                done.attempt_id,
            )
        )
    cur.executemany(_sql(_FINISH.format(json=cast), sqlite), rows)
    retried = [(False, False, d.attempt_id) for d in finished if d.retry_at is not None]
    if retried:
        cur.executemany(_sql(_NEXT_TRY, sqlite), retried)
    conn.commit()


def release(conn: Any, attempt_ids: Sequence[int]) -> None:
    """Give up this process's hold on pending tries it will not send; commit."""
    sqlite = _is_sqlite(conn)
    cur = conn.cursor()
    _begin(cur, sqlite)
    cur.executemany(_sql(_RELEASE, sqlite), [(i,) for i in attempt_ids])
    conn.commit()


def stored_time(moment: datetime, sqlite: bool) -> Any:
    """A time as the attempts' DateTime columns hold it on this engine."""
    return _time(moment, sqlite)


def _time(moment: datetime, sqlite: bool) -> Any:
    naive = naive_utc(moment)
    # The form SQLAlchemy's DateTime column stores on SQLite, so text comparisons order times.
    return naive.isoformat(" ", "microseconds") if sqlite else naive


def _is_sqlite(conn: Any) -> bool:
    return type(conn.dbapi_connection).__module__.startswith("sqlite3")


def _begin(cur: Any, sqlite: bool) -> None:
    if sqlite:  # autocommit mode (app/store/engine.py): take the write lock up front
        cur.execute("BEGIN IMMEDIATE")


def _sql(text: str, sqlite: bool) -> str:
    return text.replace("%s", "?") if sqlite else text


def _headers(value: Any) -> list[list[str]]:
    return json.loads(value) if isinstance(value, str | bytes) else value
