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
the oldest unpinned requests beyond the bin's limit (never the newest one), renew the expiry.

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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from . import keys
from .extensions import db, under_gevent
from .models import Bin, SummaryDict
from .snapshot import Snapshot

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
_LOCK_BINS_PG = "SELECT id FROM bins WHERE id = ANY(%s) ORDER BY id FOR UPDATE"
_TAKE_SEQS_PG = """
UPDATE bins SET last_seq = bins.last_seq + v.n, request_count = bins.request_count + v.n
FROM (SELECT unnest(%s::text[]) AS id, unnest(%s::int[]) AS n) AS v
WHERE bins.id = v.id
RETURNING bins.id, last_seq, request_count, max_requests, expires_after, expires_at,
          ingest_auth, ingest_secret_hash
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
        self._sequence: str | None = None
        # SQLite: True when index() also checkpoints the WAL (the Recorder's native thread), so
        # write() turns SQLite's automatic checkpoint off on its connections: otherwise every
        # thousandth page the committing batch would copy the WAL back and fsync, on the loop.
        self.checkpoint_in_index = False

    def _sql(self, statement: str) -> str:
        return statement if self.sqlite else statement.replace("?", "%s")

    def checkout(self) -> Any:
        """A pooled DB-API connection (pinged first); StorageUnavailable when there is none."""
        try:
            return self._engine.raw_connection()
        except DBAPIError as err:
            raise StorageUnavailable(str(err.orig)) from err

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
            self._write(conn, cur, batch)
            conn.commit()
        except BaseException as err:
            for item in batch:
                item.result = None
            try:
                conn.rollback()
            except Exception:  # noqa: S110 - the connection is discarded below anyway
                pass
            conn.invalidate()  # never reuse a connection in an unknown state
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
            try:
                conn.rollback()
            except sqlite3.Error:  # noqa: S110 - the connection is discarded below anyway
                pass
            conn.invalidate()
            raise StorageUnavailable(str(err)) from err
        return taken

    def _write(self, conn: Any, cur: Any, batch: list[Pending]) -> None:
        by_bin: dict[str, list[Pending]] = {}
        for item in batch:
            by_bin.setdefault(item.bin_id, []).append(item)
        # 1. Each bin's next sequence numbers (this also locks the bins' rows on PostgreSQL).
        bins: list[tuple[str, list[Pending], tuple]] = []
        stored: list[tuple[Pending, int, bool, str | None]] = []  # item, seq, rejected, auth
        taken = self._take_seqs(cur, {bin_id: len(items) for bin_id, items in by_bin.items()})
        for bin_id, items in by_bin.items():
            n = len(items)
            row = taken.get(bin_id)
            if row is None:
                continue  # the bin is gone: these captures answer 404 (result stays None)
            last_seq, _, _, _, _, auth, secret_hash = row
            target = Target(auth, secret_hash)
            first = last_seq - n + 1
            for i, item in enumerate(items):
                stored.append((item, first + i, not target.allows(item.authorization), auth))
            bins.append((bin_id, items, row))
        if not stored:
            return
        # 2. The requests and their payloads.
        summaries = self._insert(conn, cur, stored)
        # 3. Retention (after the inserts: a burst bigger than the limit drops its own oldest),
        # then expiry.
        dropped: dict[int, list[int]] = {}
        for bin_id, items, row in bins:
            last_seq, count, limit, expires_after, expires_at = row[:5]
            dropped[id(items[-1])] = self._drop_oldest(cur, bin_id, count - limit, keep=last_seq)
            self._renew(cur, bin_id, expires_after, expires_at, items[-1].snap.received_at)
        for (item, _, _, auth), summary in zip(stored, summaries, strict=True):
            item.result = Recorded(summary, auth, dropped.get(id(item), []))

    def _take_seqs(self, cur: Any, counts: dict[str, int]) -> dict[str, tuple]:
        """Advance each bin's sequence by its count of captures; return the updated rows by id."""
        if self.sqlite:  # in-process and under the database-wide write lock: one by one is cheap
            taken = {}
            for bin_id, n in counts.items():
                cur.execute(_TAKE_SEQS, (n, n, bin_id))
                row = cur.fetchone()
                if row is not None:
                    taken[bin_id] = row
            return taken
        # PostgreSQL: two round trips whatever the number of bins. The rows are locked in id
        # order first, so two processes writing batches for the same bins never deadlock.
        ids = sorted(counts)
        cur.execute(_LOCK_BINS_PG, (ids,))
        cur.execute(_TAKE_SEQS_PG, (ids, [counts[i] for i in ids]))
        return {row[0]: tuple(row[1:]) for row in cur.fetchall()}

    def _insert(
        self, conn: Any, cur: Any, stored: list[tuple[Pending, int, bool, str | None]]
    ) -> list[SummaryDict]:
        ids = self._new_ids(cur, len(stored))
        summaries, rows, payloads, streamed = [], [], [], []
        for (item, seq, rejected, _), request_id in zip(stored, ids, strict=True):
            snap = item.snap
            # Formatted once for the summary and the row (models.isoformat, without its "Z").
            naive = snap.received_at.astimezone(UTC).replace(tzinfo=None)
            received_at = naive.isoformat(timespec="microseconds")
            status = 401 if rejected else 200
            summaries.append(
                {
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
            )
            rows.append(
                (
                    request_id,
                    item.bin_id,
                    seq,
                    snap.method,
                    snap.path,
                    snap.query_string,
                    snap.content_type,
                    len(snap.body),
                    snap.remote_addr,
                    # The form SQLAlchemy's DateTime column stores on SQLite (see _moment).
                    received_at.replace("T", " ") if self.sqlite else naive,
                    status,
                    rejected,
                    False,
                )
            )
            payload = (request_id, snap.url, snap.http_version, item.headers_json, snap.body)
            if self.sqlite and len(snap.body) >= STREAM_BLOB_BYTES:
                streamed.append(payload)
            else:
                payloads.append(payload)
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
        """Insert ``rows``: on SQLite with one multi-row INSERT (one statement to run, not one per
        row); psycopg's executemany pipelines the rows, which measured faster on PostgreSQL than
        one statement of many rows (294 vs 428 us a capture)."""
        if not rows:
            return
        if not self.sqlite:
            cur.executemany(self._sql(statement), rows)
            return
        head, values = statement.split("VALUES")
        sql = f"{head}VALUES {', '.join([values.strip()] * len(rows))}"
        cur.execute(sql, [value for row in rows for value in row])

    def _new_ids(self, cur: Any, n: int) -> list[int]:
        """Allocate ids for ``n`` requests inside the transaction."""
        if self.sqlite:
            # The transaction holds the write lock, so nobody else can take these ids meanwhile.
            cur.execute("SELECT COALESCE(MAX(id), 0) FROM requests")
            (top,) = cur.fetchone()
            return list(range(top + 1, top + 1 + n))
        if self._sequence is None:
            cur.execute("SELECT pg_get_serial_sequence('requests', 'id')")
            (self._sequence,) = cur.fetchone()
        cur.execute("SELECT nextval(%s) FROM generate_series(1, %s)", (self._sequence, n))
        return [row[0] for row in cur.fetchall()]

    def _moment(self, moment: datetime) -> Any:
        """A UTC time in the form SQLAlchemy's DateTime column stores and reads back."""
        naive = moment.astimezone(UTC).replace(tzinfo=None)
        return naive.isoformat(" ", "microseconds") if self.sqlite else naive

    def _drop_oldest(self, cur: Any, bin_id: str, excess: int, keep: int) -> list[int]:
        """Delete the ``excess`` oldest unpinned requests other than ``keep``; return their seqs."""
        if excess <= 0:
            return []
        cur.execute(self._sql(_OLDEST), (bin_id, False, keep, excess))
        victims = cur.fetchall()
        if victims:
            cur.executemany(self._sql(_DELETE_REQUEST), [(v[0],) for v in victims])
            cur.execute(self._sql(_SHRINK), (len(victims), bin_id))
        return [v[1] for v in victims]

    def _renew(
        self, cur: Any, bin_id: str, expires_after: int | None, expires_at: Any, now: datetime
    ) -> None:
        if isinstance(expires_at, str):
            expires_at = datetime.fromisoformat(expires_at)
        if expires_at is not None:
            expires_at = expires_at.replace(tzinfo=UTC)
        if due_for_renewal(expires_after, expires_at, now):
            moment = self._moment(now + timedelta(seconds=expires_after))
            cur.execute(self._sql(_RENEW), (moment, bin_id))


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
        else:
            self._event = threading.Event
            self._lock = threading.Lock()
            self._thread = None

    def record(
        self, bin_id: str, snap: Snapshot, authorization: str | None = None
    ) -> Recorded | None:
        """Store one capture and return once it is committed; None when the bin does not exist.

        Raises StorageUnavailable when the database could not store it.
        """
        item = Pending(bin_id, snap, authorization, json.dumps(snap.headers))
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
                while True:
                    conn = self._store.checkout()
                    self._index_idle.clear()
                    try:
                        taken = self._thread.apply(self._store.index, (conn,))
                    finally:
                        self._index_idle.set()
                        conn.close()
                    if taken < INDEX_BATCH:
                        break
            except StorageUnavailable as err:  # the next stored batch, or a search, tries again
                log.warning("indexing queued requests for search failed: %s", err)
            except Exception:  # a bug: keep the indexer alive; searches still index for themselves
                log.exception("indexing queued requests for search failed")

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
        conn = self._store.checkout()  # here, not in the native thread: the pool is gevent's
        try:
            if self._thread is None:
                self._store.write(conn, batch)
                return
            if sum(len(item.snap.body) for item in batch) <= INLINE_BATCH_BYTES:
                # While the indexer holds the write lock in the thread, wait for it here rather
                # than hand the batch to the thread behind it, where its every statement would
                # queue for the GIL behind the busy event loop.
                self._index_idle.wait()
                if self._store.write(conn, batch, wait=False):
                    return
            self._thread.apply(self._store.write, (conn, batch))
        finally:
            conn.close()  # back to the pool (an invalidated one is simply dropped)
