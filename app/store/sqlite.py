"""The SQLite capture writer: a batch statement by statement, under the database's write lock.

In-process and under the database-wide write lock, statement by statement is cheap. The batch
numbers each bin's captures (``UPDATE ... RETURNING``), inserts the requests and payloads with
one multi-row INSERT each, drops the oldest unpinned requests beyond each bin's limit (never the
newest) and renews expiries. Big bodies are written through the blob API (``STREAM_BLOB_BYTES``)
and indexed for search at once; everything else is queued for search by the payload's insert
trigger and indexed later (app/store/indexing.py).

Who calls what, and where (app/store/recorder.py): ``write_now`` on the event loop, through the
loop's own connection, when the write lock is free; ``write``, ``index`` and ``checkpoint`` in
the writer's native thread, through pooled connections.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from app.domain.shapes import SummaryDict
from app.store import answers, batch_rows, engine, indexing
from app.store import batch as batches
from app.store.answers import AnswerNote
from app.store.batch import NUMBERED_COLUMNS, BinBatch, Numbered, Pending, Stored
from app.store.errors import StorageUnavailable, contended, discard
from app.store.writer import Writer

# Bodies at least this big are written through the blob API, straight into the database's pages:
# bound as a parameter, sqlite3 copies the body, SQLite builds the row in memory from that copy
# and indexing it for search reads it back again (a 25 MiB body peaked at 4.2x its size).
STREAM_BLOB_BYTES = 256 * 1024
# Each page in the WAL is preceded by a frame header of this many bytes (SQLite's file format).
WAL_FRAME_HEADER = 24
# Marks a pooled connection (its pool record's info) whose automatic checkpoint is off.
_NO_AUTOCHECKPOINT = "hookscope.no_autocheckpoint"

_TAKE_SEQS = f"""
UPDATE bins SET last_seq = last_seq + ?, request_count = request_count + ?,
                stored_bytes = stored_bytes + ?, last_capture_at = ?
WHERE id = ?
RETURNING {", ".join(NUMBERED_COLUMNS)}
"""  # noqa: S608 - column names from app/store/batch.py
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


class SqliteWriter(Writer):
    sqlite = True

    def __init__(
        self, engine: Any, busy_timeout_ms: int = 30_000, bin_max_bytes: int | None = None
    ) -> None:
        super().__init__(engine, busy_timeout_ms, bin_max_bytes)
        # True when the Recorder checkpoints the WAL itself (checkpoint(), in its native thread),
        # so write() turns SQLite's automatic checkpoint off on its connections: otherwise every
        # thousandth page the committing batch would copy the WAL back and fsync, on the loop.
        self.checkpoint_apart = False
        # The event loop's own connection (write_now), kept between batches: a pooled one costs
        # a ping at checkout, a rollback at return and two busy_timeout changes a batch.
        self._own: Any = None
        self._page_bytes: int | None = None

    def write_now(self, batch: list[Pending]) -> bool:
        """Store the batch at once if the write lock is free; False, having done nothing, if not.

        Never waits for the lock, so it may run on the event loop: its connection's busy
        timeout is 0. The caller writes a batch refused here where waiting is harmless.
        """
        own = self._own or self._connect_own()
        self._own = None  # kept only if the batch leaves it usable (failed() invalidates it)
        written = self._write_in_transaction(own, batch, wait=False)
        self._own = own
        return written

    def _connect_own(self) -> Any:
        own = self.checkout()
        own.detach()  # ours: closed when dropped, never back in the pool with timeout 0
        own.cursor().execute("PRAGMA busy_timeout = 0")
        return own

    def write(self, conn: Any, batch: list[Pending]) -> None:
        """Store the batch in one transaction and set each item's result, or raise for all.

        Waits for the write lock up to HOOKSCOPE_SQLITE_BUSY_TIMEOUT_MS: in a native thread, or
        where no event loop is (tests, the CLI).
        """
        self._write_in_transaction(conn, batch, wait=True)

    def _write_in_transaction(self, conn: Any, batch: list[Pending], *, wait: bool) -> bool:
        cur = self.own(conn).cursor()  # autocommit mode: we say when a transaction starts
        try:
            cur.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as err:
            if not contended(err):  # read-only, an I/O error: not a lock to wait for
                self.failed(conn, batch, err)
            if wait:
                raise StorageUnavailable("the database stayed locked") from err
            return False
        try:
            self._write(conn, cur, batch)
            conn.commit()
        except BaseException as err:
            self.failed(conn, batch, err)
        return True

    def write_notes(self, conn: Any, notes: list[AnswerNote]) -> None:
        """Store what captures were answered, in one transaction, waiting for the write lock."""
        self._notes_in_transaction(conn, notes, wait=True)

    def write_notes_own(self, notes: list[AnswerNote]) -> bool:
        """Store notes now if the write lock is free (like ``write_now``); False if not."""
        own = self._own or self._connect_own()
        self._own = None  # kept only if the notes leave it usable
        written = self._notes_in_transaction(own, notes, wait=False)
        self._own = own
        return written

    def _notes_in_transaction(self, conn: Any, notes: list[AnswerNote], *, wait: bool) -> bool:
        cur = self.own(conn).cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as err:
            if wait:
                raise StorageUnavailable("the database stayed locked") from err
            return False
        try:
            for sql, rows in answers.statements(notes, _stored_time):
                cur.executemany(sql, rows)
            conn.commit()
        except sqlite3.Error as err:
            discard(conn)
            raise StorageUnavailable(str(err)) from err
        return True

    def own(self, conn: Any) -> Any:
        """Make a connection the writer's: without SQLite's automatic checkpoint when the
        Recorder checkpoints apart, so that no commit copies the WAL back on the event loop."""
        if self.checkpoint_apart and not conn.info.get(_NO_AUTOCHECKPOINT):
            conn.cursor().execute("PRAGMA wal_autocheckpoint = 0")
            conn.info[_NO_AUTOCHECKPOINT] = True
        return conn

    def index(self, conn: Any) -> bool:
        """Index a batch of the requests queued for search; tell whether more are queued.

        Waits for the write lock, so it runs in the writer's native thread, where SQLite's
        work (one statement for the whole batch, the GIL released) goes on beside the event loop.
        """
        cur = conn.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")
            taken = indexing.index_pending(cur)
            conn.commit()
        except sqlite3.Error as err:
            discard(conn)
            raise StorageUnavailable(str(err)) from err
        return taken >= indexing.INDEX_BATCH

    def checkpoint(self, conn: Any) -> None:
        """Copy what the WAL holds back into the database, waiting for no one (PASSIVE); when
        the WAL has grown past WAL_SIZE_LIMIT all the same, wait for the writers (RESTART).

        PASSIVE takes no write lock: captures go on committing meanwhile. But under a steady
        load it never catches up with them: each one finds frames written while it copied, so
        the WAL is never all copied, never starts over, and grows without end (bench/soak.py:
        1.5 GiB after 165,000 captures into 100 bins, captures down to a tenth of their rate).
        RESTART waits for the batch being written, copies the rest while later batches wait
        (they queue for this thread: a few tens of milliseconds, once the WAL holds 16 MiB), and
        lets the next batch start the WAL over, cut back to WAL_SIZE_LIMIT. It writes and syncs
        the database file, so it runs in the writer's native thread.
        """
        try:
            cur = conn.cursor()
            _, frames, _ = cur.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if frames * (self._page_size(cur) + WAL_FRAME_HEADER) > engine.WAL_SIZE_LIMIT:
                cur.execute("PRAGMA wal_checkpoint(RESTART)")
        except sqlite3.Error as err:
            discard(conn)
            raise StorageUnavailable(str(err)) from err

    def _page_size(self, cur: Any) -> int:
        if self._page_bytes is None:
            (self._page_bytes,) = cur.execute("PRAGMA page_size").fetchone()
        return self._page_bytes

    def _write(self, conn: Any, cur: Any, batch: list[Pending]) -> None:
        grouped = batches.by_bin(batch)
        taken = {}
        for bin_id, count, size, at in batches.numbering(grouped, sqlite=True):
            cur.execute(_TAKE_SEQS, (count, count, size, at, bin_id))
            found = cur.fetchone()
            if found is not None:
                taken[bin_id] = Numbered.from_row(found)
        bins, stored = batches.judge(grouped, taken, self.answerer, self.bin_max_bytes)
        if not stored:
            return
        summaries, request_ids = self._insert(conn, cur, stored)
        forwards = self._forwards(cur, stored, request_ids)
        dropped, freed = {}, {}
        for b in bins:
            dropped[b.bin_id], freed[b.bin_id] = self._keep(cur, b)
        batches.settle(bins, stored, summaries, dropped, freed)
        if forwards:
            batch_rows.note_forwards(*forwards)

    def _forwards(
        self, cur: Any, stored: list[Stored], request_ids: list[int]
    ) -> tuple[list[tuple], list[int]] | None:
        """Store each accepted capture's auto-forward tries, due at once."""
        rows = batch_rows.forward_rows(stored, self.forward_lease_seconds)
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
                _stored_time(due),
                _stored_time(until),
            )
            for attempt_id, (done, target, due, until) in zip(ids, rows, strict=True)
        ]
        _insert_rows(cur, _INSERT_FORWARD, values)
        return rows, ids

    def _insert(
        self, conn: Any, cur: Any, stored: list[Stored]
    ) -> tuple[list[SummaryDict], list[int]]:
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
                sent_at = None if sent is None else _stored_time(batches.naive_utc(sent))
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

    def _keep(self, cur: Any, bin_: BinBatch) -> tuple[list[int], int]:
        """Apply the bin's retention and renew its expiry; return the seqs dropped and the bytes
        they held."""
        numbered = bin_.numbered
        dropped = _drop_oldest(
            cur, bin_.bin_id, bin_.excess, bin_.bytes_excess, keep=numbered.last_seq
        )
        renewed = numbered.renewed_expiry(bin_.items[-1].snap.received_at)
        if renewed is not None:
            cur.execute(_RENEW, (_stored_time(renewed), bin_.bin_id))
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


def _stored_time(naive_utc: datetime) -> str:
    """The form SQLAlchemy's DateTime column stores on SQLite."""
    return naive_utc.isoformat(" ", "microseconds")
