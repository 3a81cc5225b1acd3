"""SQLite: the rows one batch writes, statement by statement, in the writer's transaction.

The requests and payloads with one multi-row INSERT each, big bodies through the blob API
(``STREAM_BLOB_BYTES``) and indexed for search at once, the answers and auto-forward tries stored
with their captures, then retention: the oldest unpinned requests beyond each bin's limit dropped
(never the newest), and expiries renewed. The writer that runs them: app/store/sqlite.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.domain.shapes import SummaryDict
from app.store import batch_rows, indexing
from app.store.batch import BinBatch, Stored, naive_utc

# Bodies at least this big are written through the blob API, straight into the database's pages:
# bound as a parameter, sqlite3 copies the body, SQLite builds the row in memory from that copy
# and indexing it for search reads it back again (a 25 MiB body peaked at 4.2x its size).
STREAM_BLOB_BYTES = 256 * 1024
_INSERT_REQUEST = """
INSERT INTO requests (id, bin_id, seq, method, path, query_string, content_type, body_size,
                      remote_addr, received_at, status, rejected, delivery_id, stored_bytes,
                      pinned)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_INSERT_ANSWER = "INSERT INTO answers (request_id, record, sent_at) VALUES (?, ?, ?)"
_INSERT_PAYLOAD = (
    "INSERT INTO payloads (request_id, url, http_version, headers, body) VALUES (?, ?, ?, ?, ?)"
)
_INSERT_PAYLOAD_ZEROBLOB = (
    "INSERT INTO payloads (request_id, url, http_version, headers, body)"
    " VALUES (?, ?, ?, ?, zeroblob(?))"
)
_INSERT_FORWARD = """
INSERT INTO attempts (id, request_id, bin_id, kind, target, method, try_number, state, due_at,
                      lease_until, reason, message, response_truncated, edited)
VALUES (?, ?, ?, 'forward', ?, ?, 1, 'pending', ?, ?, '', '', 0, 0)
"""
# The oldest unpinned requests but the newest, oldest first; read lazily, as far as needed.
_OLDEST = """
SELECT id, seq, stored_bytes FROM requests WHERE bin_id = ? AND pinned = ? AND seq <> ?
ORDER BY seq LIMIT ?
"""
# Rows read at a time while looking for enough bytes to free.
_OLDEST_CHUNK = 64
_DELETE_REQUEST = "DELETE FROM requests WHERE id = ?"
_SHRINK = (
    "UPDATE bins SET request_count = request_count - ?, stored_bytes = stored_bytes - ?"
    " WHERE id = ?"
)
_RENEW = "UPDATE bins SET expires_at = ? WHERE id = ?"


def insert(conn: Any, cur: Any, stored: list[Stored]) -> tuple[list[SummaryDict], list[int]]:
    """Insert the requests, payloads and answers of a batch; return the summaries and ids."""
    # The transaction holds the write lock, so nobody else can take these ids meanwhile.
    cur.execute("SELECT COALESCE(MAX(id), 0) FROM requests")
    (top,) = cur.fetchone()
    summaries, rows, payloads, streamed, answered = [], [], [], [], []
    request_ids = list(range(top + 1, top + 1 + len(stored)))
    for request_id, done in zip(request_ids, stored, strict=True):
        described, request, payload = batch_rows.row(done, sqlite=True)
        summaries.append(described)
        rows.append((request_id, done.item.bin_id, done.seq, *request, False))
        decided = done.decided
        if decided is not None and decided.record is not None:
            sent = decided.sent_at
            sent_at = None if sent is None else stored_time(naive_utc(sent))
            answered.append((request_id, decided.record, sent_at))
        if len(done.item.snap.body) >= STREAM_BLOB_BYTES:
            streamed.append((request_id, *payload))
        else:
            payloads.append((request_id, *payload))
    _insert_rows(cur, _INSERT_REQUEST, rows)
    _insert_rows(cur, _INSERT_PAYLOAD, payloads)
    if answered:
        _insert_rows(cur, _INSERT_ANSWER, answered)
    for request_id, url, http_version, headers_json, body in streamed:
        cur.execute(
            _INSERT_PAYLOAD_ZEROBLOB, (request_id, url, http_version, headers_json, len(body))
        )
        with conn.dbapi_connection.blobopen("payloads", "body", request_id) as blob:
            blob.write(body)
        indexing.index_streamed(cur, request_id, body)
    return summaries, request_ids


def forwards(
    cur: Any, stored: list[Stored], request_ids: list[int], lease_seconds: float
) -> tuple[list[tuple], list[int]] | None:
    """Store each accepted capture's auto-forward tries, due at once."""
    rows = batch_rows.forward_rows(stored, lease_seconds)
    if not rows:
        return None
    request_of = {id(done): rid for done, rid in zip(stored, request_ids, strict=True)}
    cur.execute("SELECT COALESCE(MAX(id), 0) FROM attempts")
    (top,) = cur.fetchone()
    ids = list(range(top + 1, top + 1 + len(rows)))
    values = [
        (
            attempt_id,
            request_of[id(done)],
            done.item.bin_id,
            target,
            done.item.snap.method,
            stored_time(due),
            stored_time(until),
        )
        for attempt_id, (done, target, due, until) in zip(ids, rows, strict=True)
    ]
    _insert_rows(cur, _INSERT_FORWARD, values)
    return rows, ids


def keep(cur: Any, bin_: BinBatch) -> tuple[list[int], int]:
    """Apply the bin's retention and renew its expiry; return the seqs dropped and the bytes
    they held."""
    numbered = bin_.numbered
    dropped = _drop_oldest(cur, bin_.bin_id, bin_.excess, bin_.bytes_excess, keep=numbered.last_seq)
    renewed = numbered.renewed_expiry(bin_.items[-1].snap.received_at)
    if renewed is not None:
        cur.execute(_RENEW, (stored_time(renewed), bin_.bin_id))
    return dropped


def _insert_rows(cur: Any, statement: str, rows: list[tuple]) -> None:
    """Insert ``rows`` with one multi-row INSERT (one statement to run, not one per row)."""
    if not rows:
        return
    head, values = statement.split("VALUES")
    sql = f"{head}VALUES {', '.join([values.strip()] * len(rows))}"
    cur.execute(sql, [value for row in rows for value in row])


def _drop_oldest(
    cur: Any, bin_id: str, excess: int, bytes_excess: int, keep: int
) -> tuple[list[int], int]:
    """Delete the oldest unpinned requests other than ``keep``, at least ``excess`` of them
    holding at least ``bytes_excess`` bytes (or all there are); return their seqs and bytes."""
    if excess <= 0 and bytes_excess <= 0:
        return [], 0
    victims, freed = [], 0
    if bytes_excess <= 0:
        cur.execute(_OLDEST, (bin_id, False, keep, excess))
        victims = cur.fetchall()
        freed = sum(v[2] for v in victims)
    else:
        # How many rows free enough bytes is unknown: read a few at a time, stop when done.
        cur.execute(_OLDEST, (bin_id, False, keep, -1))
        while len(victims) < excess or freed < bytes_excess:
            rows = cur.fetchmany(_OLDEST_CHUNK)
            for row in rows:
                if len(victims) >= excess and freed >= bytes_excess:
                    break
                victims.append(row)
                freed += row[2]
            if len(rows) < _OLDEST_CHUNK:
                break
    if victims:
        cur.executemany(_DELETE_REQUEST, [(v[0],) for v in victims])
        cur.execute(_SHRINK, (len(victims), freed, bin_id))
    return [v[1] for v in victims], freed


def stored_time(moment: datetime) -> str:
    """The form SQLAlchemy's DateTime column stores on SQLite (of a naive UTC time)."""
    return moment.isoformat(" ", "microseconds")
