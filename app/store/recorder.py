"""The capture's write path: store requests in batches, one transaction each (group commit).

Every request a provider sends is stored before it is answered. Committing each one on its own
would make the database's commit the ceiling; instead captures queue up and one writer per process
stores whatever has queued in a single transaction, then wakes every sender of the batch. Nobody
is answered before the commit that holds their capture, and nobody waits for a timer: at low load
a batch is one capture, under a burst it is every capture that arrived during the previous commit.

The writer speaks plain DB-API SQL (sqlite3 or psycopg), not the ORM: profiling the per-capture
ORM and Core paths showed SQLAlchemy's own work as the largest cost. On SQLite a batch is written
on the event loop when the database's write lock is free (without waiting for it), and in a native
thread of its own when the lock is taken or the batch is big, so waiting for the lock or the disk
never stalls the event loop that serves every other connection; on PostgreSQL psycopg waits
cooperatively under gevent.

One batch, per bin: take the next sequence numbers, insert the requests and their payloads, drop
the oldest unpinned requests beyond the bin's limit (never the newest one), renew the expiry. On
PostgreSQL that is two round trips whatever the batch holds (``Store._write_postgres``): bins'
rows locked by one process make every other process writing to them wait, for as long as the
transaction lasts, round trips included.

On SQLite the payload's insert trigger only queues the request for search (migration 0004);
``index_pending`` indexes the queue a moment later, one statement for a whole burst, in the
writer's native thread. Indexing inside each capture's transaction cost more than a third of
the capture's time on the event loop.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import re
import sqlite3
import threading
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from app.domain import keys
from app.domain.models import Bin, SummaryDict
from app.extensions import db, under_gevent
from app.ingest.snapshot import Snapshot

log = logging.getLogger("hookscope.recording")
BINS = Bin.__table__
# Generated ids are 26 characters of base32 (128 random bits). Fixed bins declared by an operator
# may use other ids, so lookups accept any URL-safe token up to 64 characters.
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Expiry is renewed by activity, but written at most this often per bin (or each 1% of the period).
RENEW_EVERY = timedelta(hours=1)
# A batch stops growing at this many captures or body bytes, to keep transactions short.
MAX_BATCH = 256
MAX_BATCH_BYTES = 32 * 1024 * 1024
# SQLite batches with more body bytes than this are written in the writer's native thread.
INLINE_BATCH_BYTES = 1024 * 1024
# PostgreSQL batches with up to this many body bytes are sent as one pipeline. psycopg 3.3's
# pipeline hangs on messages of ~16 MiB (a send left unflushed while it waits for the reply).
PIPELINE_BATCH_BYTES = 1024 * 1024
# SQLite: how long after a stored batch the requests it queued for search are indexed, so that a
# burst's captures are indexed by one statement.
INDEX_AFTER_SECONDS = 0.05
# SQLite bodies at least this big are written through the blob API, straight into the database's
# pages: bound as a parameter, sqlite3 copies the body, SQLite builds the row in memory from that
# copy and indexing it for search reads it back again (a 25 MiB body peaked at 4.2x its size).
STREAM_BLOB_BYTES = 256 * 1024

_LOOKUP = select(BINS.c.ingest_auth, BINS.c.ingest_secret_hash).where(
    BINS.c.id == bindparam("bin_id")
)

_TAKE_SEQS = """
UPDATE bins SET last_seq = last_seq + ?, request_count = request_count + ? WHERE id = ?
RETURNING last_seq, request_count, max_requests, expires_after, expires_at, ingest_auth,
          ingest_secret_hash
"""
# PostgreSQL: a batch is two round trips, and the bins' rows stay locked from the first one's
# reply to the second one's commit (see Store._write_postgres). First: lock the rows in id order
# (so two processes writing batches for the same bins never deadlock) and number the captures.
_NUMBER_PG = """
WITH locked AS MATERIALIZED (SELECT id FROM bins WHERE id = ANY(%(ids)s) ORDER BY id FOR UPDATE)
UPDATE bins SET last_seq = bins.last_seq + v.n, request_count = bins.request_count + v.n
FROM locked JOIN unnest(%(ids)s::text[], %(counts)s::int[]) AS v(id, n) USING (id)
WHERE bins.id = locked.id
RETURNING bins.id, last_seq, request_count, max_requests, expires_after, expires_at,
          ingest_auth, ingest_secret_hash
"""
# Then, sent together with COMMIT: the requests (ids from their sequence), their payloads (each
# finds its request's id through the (bin_id, seq) index; the search trigger fires per row), and
# per bin, retention (after the inserts: a burst bigger than the limit drops its own oldest)
# with the count it changes and the renewed expiry, all in one statement.
_INSERT_REQUESTS_PG = """
INSERT INTO requests (bin_id, seq, method, path, query_string, content_type, body_size,
                      remote_addr, received_at, status, rejected, pinned)
SELECT bin_id, seq, method, path, query_string, content_type, body_size, remote_addr,
       received_at, status, rejected, false
FROM unnest(%s::text[], %s::int[], %s::text[], %s::text[], %s::text[], %s::text[], %s::int[],
            %s::text[], %s::timestamp[], %s::int[], %s::bool[])
  AS r(bin_id, seq, method, path, query_string, content_type, body_size, remote_addr,
       received_at, status, rejected)
"""
_INSERT_PAYLOADS_PG = """
INSERT INTO payloads (request_id, url, http_version, headers, body)
SELECT (SELECT id FROM requests WHERE requests.bin_id = p.bin_id AND requests.seq = p.seq),
       url, http_version, headers, body
FROM unnest(%s::text[], %s::int[], %s::text[], %s::text[], %s::json[], %b::bytea[])
  AS p(bin_id, seq, url, http_version, headers, body)
"""
_KEEP_PG = """
WITH v AS (
  SELECT * FROM unnest(%s::text[], %s::int[], %s::int[], %s::timestamp[])
    AS v(bin_id, excess, keep, expires_at)
), gone AS (
  DELETE FROM requests WHERE id IN (
    SELECT oldest.id FROM v CROSS JOIN LATERAL (
      SELECT id FROM requests
      WHERE requests.bin_id = v.bin_id AND NOT requests.pinned AND requests.seq <> v.keep
      ORDER BY requests.seq LIMIT v.excess
    ) AS oldest
  )
  RETURNING bin_id, seq
), counted AS (
  SELECT bin_id, count(*) AS n FROM gone GROUP BY bin_id
), kept AS (
  UPDATE bins SET request_count = bins.request_count - coalesce(counted.n, 0),
                  expires_at = coalesce(v.expires_at, bins.expires_at)
  FROM v LEFT JOIN counted USING (bin_id)
  WHERE bins.id = v.bin_id AND (counted.n IS NOT NULL OR v.expires_at IS NOT NULL)
)
SELECT bin_id, seq FROM gone ORDER BY seq
"""
_INSERT_REQUEST = """
INSERT INTO requests (id, bin_id, seq, method, path, query_string, content_type, body_size,
                      remote_addr, received_at, status, rejected, pinned)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_INSERT_PAYLOAD = (
    "INSERT INTO payloads (request_id, url, http_version, headers, body) VALUES (?, ?, ?, ?, ?)"
)
_INSERT_PAYLOAD_ZEROBLOB = (
    "INSERT INTO payloads (request_id, url, http_version, headers, body)"
    " VALUES (?, ?, ?, ?, zeroblob(?))"
)


@functools.cache
def _index_streamed_sql() -> tuple[int, str]:
    """SQL that indexes a request whose body was written through the blob API, at once.

    Left to the search queue (migration 0004), the indexer would read the request through
    migration 0003's view, which reads the whole body, twice (25 MiB bodies peaked at 2x more).
    This computes the same text with the view's own SQL, but over the body's indexed head bound
    as a parameter (?1); the caller then takes the request off the queue. tests/test_search.py
    compares what the index holds with what the view says.
    """
    fts = importlib.import_module("app.migrations.versions.0003_full_text_search")
    head = "?1"
    body = f"""CASE
      WHEN instr({head}, x'00') > 0 THEN NULL
      WHEN r.content_type LIKE '{fts.FORM}' THEN {fts.unescaped(f"CAST({head} AS TEXT)")}
      ELSE CAST({head} AS TEXT)
    END"""
    if f"substr(p.body, 1, {fts.BODY_LIMIT})" not in fts.SQLITE_VIEW:  # what ?1 stands for
        raise RuntimeError("migration 0003's view no longer indexes the body's head")
    # Built from the migration's constants only, never from input.
    sql = f"""
INSERT INTO request_search(rowid, bin, target, headers, body)
SELECT s.id, s.bin, s.target, s.headers, {body}
FROM request_search_source AS s JOIN requests AS r ON r.id = s.id WHERE s.id = ?2
"""  # noqa: S608
    return fts.BODY_LIMIT, sql


_DEQUEUE = "DELETE FROM search_pending WHERE request_id = ?"
# Marks a pooled SQLite connection (its pool record's info) whose automatic checkpoint is off.
_NO_AUTOCHECKPOINT = "hookscope.no_autocheckpoint"
# SQLite: the most queued requests one statement indexes, so the write lock is held briefly.
INDEX_BATCH = 2000
_QUEUE_BOUND = (
    "SELECT max(request_id), count(*) FROM"
    " (SELECT request_id FROM search_pending ORDER BY request_id LIMIT ?)"
)
# Each queued request is looked up by id (written as a join, SQLite carried the bound over to
# payloads and read every payload below it).
_INDEX_QUEUED = (
    "INSERT INTO request_search(rowid, bin, target, headers, body)"
    " SELECT id, bin, target, headers, body FROM request_search_source"
    " WHERE id IN (SELECT request_id FROM search_pending WHERE request_id <= ?)"
)
_DEQUEUE_THROUGH = "DELETE FROM search_pending WHERE request_id <= ?"


def index_pending(cur, limit: int = INDEX_BATCH) -> int:
    """Index up to ``limit`` queued requests, lowest ids first; return how many were queued.

    SQLite only. ``cur`` is a DB-API cursor inside a write transaction, which the caller commits.
    """
    cur.execute(_QUEUE_BOUND, (limit,))
    through, taken = cur.fetchone()
    if taken:
        cur.execute(_INDEX_QUEUED, (through,))
        cur.execute(_DEQUEUE_THROUGH, (through,))
    return taken


_OLDEST = """
SELECT id, seq FROM requests WHERE bin_id = ? AND pinned = ? AND seq <> ? ORDER BY seq LIMIT ?
"""
_DELETE_REQUEST = "DELETE FROM requests WHERE id = ?"
_SHRINK = "UPDATE bins SET request_count = request_count - ? WHERE id = ?"
_RENEW = "UPDATE bins SET expires_at = ? WHERE id = ?"


class StorageUnavailable(Exception):
    """The database could not store the capture (locked, full, down): nothing was stored."""


class _Stale(Exception):
    """The connection was found dead by a batch's first round trip: nothing can have been stored."""


@dataclass(frozen=True)
class Target:
    """What the capture needs to know about a bin before storing into it."""

    ingest_auth: str | None
    ingest_secret_hash: str | None

    def allows(self, authorization: str | None) -> bool:
        """Tell whether a capture passes the bin's ingest protection."""
        if self.ingest_auth is None or self.ingest_secret_hash is None:
            return True
        presented = keys.normalised_authorization(authorization or "")
        return keys.same(presented, self.ingest_secret_hash)


@dataclass(frozen=True)
class Recorded:
    summary: SummaryDict
    # The bin's ingest protection, as the capture's transaction saw it ("basic", "bearer", None).
    ingest_auth: str | None = None
    # Sequence numbers that retention dropped to make room.
    dropped: list[int] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return not self.summary["rejected"]


_QUOTED = json.encoder.encode_basestring_ascii  # json.dumps's own quoting (C), ensure_ascii


def headers_json(headers: list[list[str]]) -> str:
    """``json.dumps(headers)`` for ``[name, value]`` pairs of text, the form stored in payloads.

    Written out pair by pair: json.dumps builds an encoder and walks the list generically, about
    three times as long for a request's few headers. Anything but pairs of text raises
    (snapshot.headers_of makes only those).
    """
    return (
        "[" + ", ".join([f"[{_QUOTED(name)}, {_QUOTED(value)}]" for name, value in headers]) + "]"
    )


@dataclass
class Pending:
    """One capture waiting for its batch; ``wait`` returns when its transaction has ended."""

    bin_id: str
    snap: Snapshot
    authorization: str | None
    headers_json: str
    done: Any = None  # the event the sender waits on (gevent or threading)
    result: Recorded | None = None
    error: BaseException | None = None


def lookup(bin_id: str) -> Target | None:
    """Find the bin a capture is for, without holding a transaction open afterwards."""
    if not ID_PATTERN.fullmatch(bin_id):
        return None  # no bin can have this id: spare the database
    with db.engine.connect() as conn:
        row = conn.execute(_LOOKUP, {"bin_id": bin_id}).one_or_none()
    return None if row is None else Target(*row)


def due_for_renewal(expires_after: int | None, expires_at: datetime | None, now: datetime) -> bool:
    """Tell whether activity at ``now`` should push the expiry out (it moved enough to matter)."""
    if expires_after is None or expires_at is None:
        return False
    slack = min(RENEW_EVERY, timedelta(seconds=expires_after / 100))
    return expires_at < now + timedelta(seconds=expires_after) - slack


def renew(
    conn: Connection,
    bin_id: str,
    expires_after: int | None,
    expires_at: datetime | None,
    now: datetime,
) -> None:
    """Push the bin's expiry out by its period when it is due."""
    if due_for_renewal(expires_after, expires_at, now):
        conn.execute(
            update(BINS)
            .where(BINS.c.id == bin_id)
            .values(expires_at=now + timedelta(seconds=expires_after))
        )


class Store:
    """Writes batches of captures through a DB-API connection from the app's engine pool."""

    def __init__(self, engine: Engine, busy_timeout_ms: int = 30_000) -> None:
        self.sqlite = engine.dialect.name == "sqlite"
        self._engine = engine
        self._busy_timeout_ms = busy_timeout_ms
        # SQLite: True when index() also checkpoints the WAL (the Recorder's native thread), so
        # write() turns SQLite's automatic checkpoint off on its connections: otherwise every
        # thousandth page the committing batch would copy the WAL back and fsync, on the loop.
        self.checkpoint_in_index = False
        self._own: Any = None

    def checkout(self) -> Any:
        """A pooled DB-API connection (pinged first); StorageUnavailable when there is none."""
        try:
            return self._engine.raw_connection()
        except DBAPIError as err:
            raise StorageUnavailable(str(err.orig)) from err

    def write_own(self, batch: list[Pending]) -> None:
        """Store the batch through the writer's own connection (PostgreSQL, one writer).

        A pooled connection is pinged at every checkout, two round trips more a batch (BEGIN,
        SELECT 1). The writer keeps one connection instead, in autocommit mode (its batches say
        BEGIN themselves). It replaces the connection when the server has ended it while idle
        (``_idle_and_open``), or when a batch's first round trip finds it dead: nothing can have
        been stored then, so the batch goes again, as a ping would have made it.
        """
        if self._own is not None and not _idle_and_open(self._own.dbapi_connection):
            log.warning("the database closed the writer's connection; connecting again")
            self._own.invalidate()
            self._own = None
        for _ in range(2):
            reused = self._own is not None
            if not reused:
                self._own = self._connect_own()
            try:
                self.write(self._own, batch)
                if _body_bytes(batch) > PIPELINE_BATCH_BYTES:
                    # libpq's send buffer grows to the biggest message sent and never shrinks:
                    # kept, the connection would hold on to a 25 MiB body's worth for good.
                    self._own.close()
                    self._own = None
                return
            except _Stale as err:
                self._own = None
                if not reused:
                    raise StorageUnavailable(str(err.__cause__)) from err
                log.warning("the writer's connection was closed; connecting again")
            except BaseException:
                self._own = None  # write() invalidated it
                raise

    def _connect_own(self) -> Any:
        conn = self.checkout()
        conn.detach()  # ours: closed when dropped, never back in the pool in autocommit mode
        try:
            conn.rollback()  # the ping's transaction
            conn.dbapi_connection.autocommit = True
        except Exception as err:
            conn.invalidate()
            raise StorageUnavailable(str(err)) from err
        return conn

    def write(self, conn: Any, batch: list[Pending], *, wait: bool = True) -> bool:
        """Store the batch in one transaction and set each item's result, or raise for all.

        With ``wait=False`` (SQLite only) nothing waits for the write lock: when another
        connection holds it, nothing is done and False comes back, for the caller to write the
        batch where waiting is harmless. May run in a native thread: it touches only ``conn``
        and the batch.
        """
        cur = conn.cursor()
        if self.sqlite:  # autocommit mode: we say when the transaction starts, and how
            if self.checkpoint_in_index and not conn.info.get(_NO_AUTOCHECKPOINT):
                cur.execute("PRAGMA wal_autocheckpoint = 0")
                conn.info[_NO_AUTOCHECKPOINT] = True
            if not wait:
                cur.execute("PRAGMA busy_timeout = 0")
            try:
                cur.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:
                if wait:
                    raise StorageUnavailable("the database stayed locked") from None
                return False
            finally:
                if not wait:
                    cur.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        try:
            if self.sqlite:
                self._write_sqlite(conn, cur, batch)
                conn.commit()
            else:
                self._write_postgres(conn.dbapi_connection, batch)  # commits
        except BaseException as err:
            for item in batch:
                item.result = None
            _discard(conn)
            if isinstance(err, (sqlite3.Error, *db_errors())):
                raise StorageUnavailable(str(err)) from err
            raise
        return True

    def index(self, conn: Any) -> int:
        """Index a batch of the requests queued for search (SQLite); return how many were queued.

        Waits for the write lock, so it runs in the writer's native thread, where SQLite's
        work (one statement for the whole batch, the GIL released) goes on beside the event loop.
        """
        cur = conn.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")
            taken = index_pending(cur)
            conn.commit()
            if self.checkpoint_in_index:
                # Copy what the WAL holds back into the database without waiting for anyone
                # (PASSIVE), so the WAL stays small while writers keep going.
                cur.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as err:
            _discard(conn)
            raise StorageUnavailable(str(err)) from err
        return taken

    def _write_sqlite(self, conn: Any, cur: Any, batch: list[Pending]) -> None:
        # In-process and under the database-wide write lock: statement by statement is cheap.
        by_bin = _by_bin(batch)
        taken = {}
        for bin_id, items in by_bin.items():
            cur.execute(_TAKE_SEQS, (len(items), len(items), bin_id))
            row = cur.fetchone()
            if row is not None:
                taken[bin_id] = row
        bins, stored = _judge(by_bin, taken)
        if not stored:
            return
        summaries = self._insert(conn, cur, stored)
        dropped: dict[str, list[int]] = {}
        for bin_id, items, row in bins:
            last_seq, count, limit, expires_after, expires_at = row[:5]
            dropped[bin_id] = self._drop_oldest(cur, bin_id, count - limit, keep=last_seq)
            self._renew(cur, bin_id, expires_after, expires_at, items[-1].snap.received_at)
        _settle(bins, stored, summaries, dropped)

    def _write_postgres(self, pg: Any, batch: list[Pending]) -> None:
        """Store the batch in two round trips, the bins' rows locked for the second one only.

        Every round trip made under the lock makes the other processes that write to the same
        bin wait, and more for this process's busy event loop than for PostgreSQL: a reply
        waits for the loop to get back to the writer before the next statement goes out. So the
        first round trip locks and numbers, the ingest protection is judged against the rows
        as locked, and the second sends the inserts, retention, renewal and COMMIT together.
        """
        pipelined = _body_bytes(batch) <= PIPELINE_BATCH_BYTES
        by_bin = _by_bin(batch)
        ids = sorted(by_bin)
        cur, keep = pg.cursor(), pg.cursor()
        with pg.pipeline() if pipelined else nullcontext():
            try:
                if pg.autocommit:
                    cur.execute("BEGIN")
                cur.execute(_NUMBER_PG, {"ids": ids, "counts": [len(by_bin[i]) for i in ids]})
                taken = {row[0]: row[1:] for row in cur.fetchall()}  # the first round trip
            except db_errors() as err:
                if pg.broken:
                    raise _Stale from err
                raise
            bins, stored = _judge(by_bin, taken)
            summaries, requests, payloads = [], [], []
            for item, seq, rejected, _ in stored:
                summary, request, payload = _row(item, seq, rejected)
                summaries.append(summary)
                requests.append((item.bin_id, seq, *request))
                payloads.append((item.bin_id, seq, *payload))
            if stored:
                cur.execute(_INSERT_REQUESTS_PG, _columns(requests))
                # Big bodies one to a statement, as they arrived: no array of them all.
                for part in [payloads] if pipelined else [[p] for p in payloads]:
                    cur.execute(_INSERT_PAYLOADS_PG, _columns(part))
            retention = _retention(bins)
            if retention:
                keep.execute(_KEEP_PG, _columns(retention))
            # A statement, not pg.commit(), so that it goes out with the ones above: commit()
            # in a pipeline waits for their results, and leaving the pipeline costs a round trip
            # more. Either way nothing is answered before the reply to COMMIT is in.
            cur.execute("COMMIT")
        dropped: dict[str, list[int]] = {}
        for bin_id, seq in keep.fetchall() if retention else ():
            dropped.setdefault(bin_id, []).append(seq)
        _settle(bins, stored, summaries, dropped)

    def _insert(
        self, conn: Any, cur: Any, stored: list[tuple[Pending, int, bool, str | None]]
    ) -> list[SummaryDict]:
        # The transaction holds the write lock, so nobody else can take these ids meanwhile.
        cur.execute("SELECT COALESCE(MAX(id), 0) FROM requests")
        (top,) = cur.fetchone()
        summaries, rows, payloads, streamed = [], [], [], []
        for request_id, (item, seq, rejected, _) in enumerate(stored, top + 1):
            summary, request, payload = _row(item, seq, rejected, sqlite=True)
            summaries.append(summary)
            rows.append((request_id, item.bin_id, seq, *request, False))
            if len(item.snap.body) >= STREAM_BLOB_BYTES:
                streamed.append((request_id, *payload))
            else:
                payloads.append((request_id, *payload))
        self._insert_rows(cur, _INSERT_REQUEST, rows)
        self._insert_rows(cur, _INSERT_PAYLOAD, payloads)
        limit, index = _index_streamed_sql()
        for request_id, url, http_version, headers_json, body in streamed:
            cur.execute(
                _INSERT_PAYLOAD_ZEROBLOB, (request_id, url, http_version, headers_json, len(body))
            )
            with conn.driver_connection.blobopen("payloads", "body", request_id) as blob:
                blob.write(body)
            cur.execute(index, (bytes(memoryview(body)[:limit]), request_id))
            cur.execute(_DEQUEUE, (request_id,))
        return summaries

    def _insert_rows(self, cur: Any, statement: str, rows: list[tuple]) -> None:
        """Insert ``rows`` with one multi-row INSERT (one statement to run, not one per row)."""
        if not rows:
            return
        head, values = statement.split("VALUES")
        sql = f"{head}VALUES {', '.join([values.strip()] * len(rows))}"
        cur.execute(sql, [value for row in rows for value in row])

    def _drop_oldest(self, cur: Any, bin_id: str, excess: int, keep: int) -> list[int]:
        """Delete the ``excess`` oldest unpinned requests other than ``keep``; return their seqs."""
        if excess <= 0:
            return []
        cur.execute(_OLDEST, (bin_id, False, keep, excess))
        victims = cur.fetchall()
        if victims:
            cur.executemany(_DELETE_REQUEST, [(v[0],) for v in victims])
            cur.execute(_SHRINK, (len(victims), bin_id))
        return [v[1] for v in victims]

    def _renew(
        self, cur: Any, bin_id: str, expires_after: int | None, expires_at: Any, now: datetime
    ) -> None:
        if isinstance(expires_at, str):
            expires_at = datetime.fromisoformat(expires_at)
        if expires_at is not None:
            expires_at = expires_at.replace(tzinfo=UTC)
        if due_for_renewal(expires_after, expires_at, now):
            # The form SQLAlchemy's DateTime column stores on SQLite.
            moment = _naive_utc(now + timedelta(seconds=expires_after))
            cur.execute(_RENEW, (moment.isoformat(" ", "microseconds"), bin_id))


Stored = tuple[Pending, int, bool, str | None]  # the capture, its seq, rejected, the bin's auth


def _by_bin(batch: list[Pending]) -> dict[str, list[Pending]]:
    by_bin: dict[str, list[Pending]] = {}
    for item in batch:
        by_bin.setdefault(item.bin_id, []).append(item)
    return by_bin


def _judge(
    by_bin: dict[str, list[Pending]], taken: dict[str, tuple]
) -> tuple[list[tuple[str, list[Pending], tuple]], list[Stored]]:
    """Number each bin's captures from its row as the transaction took it, and judge each one
    against that row's ingest protection. A bin missing from ``taken`` is gone: its captures
    answer 404 (their result stays None)."""
    bins, stored = [], []
    for bin_id, items in by_bin.items():
        row = taken.get(bin_id)
        if row is None:
            continue
        last_seq, _, _, _, _, auth, secret_hash = row
        target = Target(auth, secret_hash)
        first = last_seq - len(items) + 1
        for i, item in enumerate(items):
            stored.append((item, first + i, not target.allows(item.authorization), auth))
        bins.append((bin_id, items, row))
    return bins, stored


def _row(
    item: Pending, seq: int, rejected: bool, sqlite: bool = False
) -> tuple[SummaryDict, tuple, tuple]:
    """A capture's summary, its request's columns after (id, bin_id, seq), and its payload's
    after request_id."""
    snap = item.snap
    # Formatted once for the summary and the row (models.isoformat, without its "Z").
    naive = _naive_utc(snap.received_at)
    received_at = naive.isoformat(timespec="microseconds")
    status = 401 if rejected else 200
    summary: SummaryDict = {
        "bin": item.bin_id,
        "seq": seq,
        "method": snap.method,
        "path": snap.path,
        "query_string": snap.query_string,
        "content_type": snap.content_type,
        "body_size": len(snap.body),
        "remote_addr": snap.remote_addr,
        "received_at": f"{received_at}Z",
        "status": status,
        "rejected": rejected,
        "pinned": False,
    }
    request = (
        snap.method,
        snap.path,
        snap.query_string,
        snap.content_type,
        len(snap.body),
        snap.remote_addr,
        # The form SQLAlchemy's DateTime column stores on SQLite.
        received_at.replace("T", " ") if sqlite else naive,
        status,
        rejected,
    )
    return summary, request, (snap.url, snap.http_version, item.headers_json, snap.body)


def _settle(
    bins: list[tuple[str, list[Pending], tuple]],
    stored: list[Stored],
    summaries: list[SummaryDict],
    dropped: dict[str, list[int]],
) -> None:
    """Set each stored capture's result; each bin's last capture carries what retention dropped."""
    last = {id(items[-1]): bin_id for bin_id, items, _ in bins}
    for (item, _, _, auth), summary in zip(stored, summaries, strict=True):
        bin_id = last.get(id(item))
        item.result = Recorded(summary, auth, dropped.get(bin_id, []) if bin_id else [])


def _retention(bins: list[tuple[str, list[Pending], tuple]]) -> list[tuple]:
    """Per bin, what _KEEP_PG needs: how many to drop, the newest seq (never dropped), and the
    renewed expiry when one is due (None otherwise). Bins with nothing to do are left out."""
    out = []
    for bin_id, items, row in bins:
        last_seq, count, limit, expires_after, expires_at = row[:5]
        now = items[-1].snap.received_at
        renewed = None
        if expires_at is not None and due_for_renewal(
            expires_after, expires_at.replace(tzinfo=UTC), now
        ):
            renewed = _naive_utc(now + timedelta(seconds=expires_after))
        if count > limit or renewed is not None:
            out.append((bin_id, max(count - limit, 0), last_seq, renewed))
    return out


def _columns(rows: list[tuple]) -> list[list]:
    """Rows as one list per column, for PostgreSQL's unnest()."""
    return [list(column) for column in zip(*rows, strict=True)]


def _naive_utc(moment: datetime) -> datetime:
    """A UTC time without its zone, the form the DateTime columns hold."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def _body_bytes(batch: list[Pending]) -> int:
    return sum(len(item.snap.body) for item in batch)


def _idle_and_open(pg: Any) -> bool:
    """Tell whether an idle psycopg connection can take the next batch. Between transactions
    the server sends nothing unasked: what it sends when it ends the connection (a restart, an
    administrator, an idle timeout) is an error, then the end of the stream. A batch that met
    the error first would fail before it learned the connection was gone."""
    from app.store import pgwait

    return not (pg.broken or pg.closed or pgwait.readable(pg.pgconn.socket))


def _discard(conn: Any) -> None:
    """Roll back what a failed transaction left and drop the connection from the pool: a
    connection in an unknown state is never reused."""
    try:
        conn.rollback()
    except Exception:  # noqa: S110 - the connection is discarded anyway
        pass
    conn.invalidate()


def db_errors() -> tuple[type[BaseException], ...]:
    """The DB-API error classes of the drivers we use, for telling storage trouble from bugs."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return ()
    return (psycopg.Error,)


class Recorder:
    """One per process: queues captures and writes them in batches (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._pending: list[Pending] = []
        self._gevent = under_gevent()
        if self._gevent:
            import gevent
            from gevent.event import Event
            from gevent.lock import Semaphore
            from gevent.threadpool import ThreadPool

            self._event = Event
            self._wake = Event()
            # SQLite calls block. A batch is written right here when the write lock is free (a
            # few hundred microseconds of work); when it is taken, or the batch is big, in a
            # native thread of its own, where waiting for the lock or the disk stalls no one.
            # Not always in the thread: its every statement would queue for the GIL behind the
            # busy event loop (measured: 2,500/s through the thread, 3,400/s here).
            self._thread = ThreadPool(1) if store.sqlite else None
            store.checkpoint_in_index = store.sqlite
            self._writer = gevent.spawn(self._run)
            # SQLite: new requests are queued for search (migration 0004) and indexed here.
            self._stored = Event()
            self._indexer = gevent.spawn(self._index_run) if store.sqlite else None
            self._index_idle = Event()
            self._index_idle.set()
            self._indexing = Semaphore()
        else:
            self._event = threading.Event
            self._lock = threading.Lock()
            self._thread = None
            self._indexer = None
            self._index_idle = threading.Event()
            self._index_idle.set()
            self._indexing = threading.Lock()

    def record(
        self, bin_id: str, snap: Snapshot, authorization: str | None = None
    ) -> Recorded | None:
        """Store one capture and return once it is committed; None when the bin does not exist.

        Raises StorageUnavailable when the database could not store it.
        """
        item = Pending(bin_id, snap, authorization, headers_json(snap.headers))
        if not self._gevent:
            with self._lock:
                self._write([item])
            return item.result
        item.done = self._event()
        self._pending.append(item)
        self._wake.set()
        item.done.wait()
        if item.error is not None:
            raise item.error
        return item.result

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = self._take()
                try:
                    self._write(batch)
                except StorageUnavailable as err:
                    log.error("storing %d capture(s) failed: %s", len(batch), err)
                    for item in batch:
                        item.error = StorageUnavailable(str(err))
                except BaseException as err:  # a bug: fail the batch, keep the writer alive
                    log.exception("storing %d capture(s) failed", len(batch))
                    for item in batch:
                        item.error = err
                for item in batch:
                    item.done.set()
                if self._indexer is not None:
                    self._stored.set()
                # Hold no capture (a body can be 25 MB) while waiting for the next batch.
                del batch, item

    def _index_run(self) -> None:
        """Index what bursts of captures queued for search, a moment after each burst began.

        In the native thread: one statement indexes the whole batch there, the GIL released,
        while the event loop goes on taking captures (a batch that finds the write lock taken
        queues for the thread behind it). A search indexes whatever is still queued itself.
        """
        import gevent

        while True:
            self._stored.wait()
            gevent.sleep(INDEX_AFTER_SECONDS)  # let the burst gather into one statement
            self._stored.clear()
            try:
                self.index_queued()
            except StorageUnavailable as err:  # the next stored batch, or a search, tries again
                log.warning("indexing queued requests for search failed: %s", err)
            except Exception:  # a bug: keep the indexer alive; searches still index for themselves
                log.exception("indexing queued requests for search failed")

    def index_queued(self) -> None:
        """Index everything queued for search (SQLite), then return. Raises StorageUnavailable.

        Under gevent the event loop stays free meanwhile: the queue is indexed a batch at a time
        in the native thread, and captures' batches go in between. A queue can be long: requests
        written into the database by something other than this app, or an indexer that kept
        failing (on the loop, a million queued requests stalled the worker for a minute).
        """
        with self._indexing:  # one at a time: the indexer's, or a search's
            while True:
                conn = self._store.checkout()
                self._index_idle.clear()
                try:
                    if self._thread is None:
                        taken = self._store.index(conn)
                    else:
                        taken = self._thread.apply(self._store.index, (conn,))
                finally:
                    self._index_idle.set()
                    conn.close()
                if taken < INDEX_BATCH:
                    return

    def _take(self) -> list[Pending]:
        taken, size = 0, 0
        for item in self._pending:
            if taken == MAX_BATCH or (taken and size + len(item.snap.body) > MAX_BATCH_BYTES):
                break
            taken += 1
            size += len(item.snap.body)
        batch, self._pending = self._pending[:taken], self._pending[taken:]
        return batch

    def _write(self, batch: list[Pending]) -> None:
        if self._gevent and not self._store.sqlite:
            self._store.write_own(batch)
            return
        conn = self._store.checkout()  # here, not in the native thread: the pool is gevent's
        try:
            if self._thread is None:
                self._store.write(conn, batch)
                return
            if _body_bytes(batch) <= INLINE_BATCH_BYTES:
                # While the indexer holds the write lock in the thread, wait for it here rather
                # than hand the batch to the thread behind it, where its every statement would
                # queue for the GIL behind the busy event loop.
                self._index_idle.wait()
                if self._store.write(conn, batch, wait=False):
                    return
            self._thread.apply(self._store.write, (conn, batch))
        finally:
            conn.close()  # back to the pool (an invalidated one is simply dropped)
