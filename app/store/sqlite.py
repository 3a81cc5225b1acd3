"""The SQLite capture writer: a batch statement by statement, under the database's write lock.

In-process and under the database-wide write lock, statement by statement is cheap. The batch
numbers each bin's captures (``UPDATE ... RETURNING``), then writes its rows
(app/store/sqlite_rows.py): inserts the requests and payloads with one multi-row INSERT each,
drops the oldest unpinned requests beyond each bin's limit (never the newest) and renews
expiries. Big bodies are written through the blob API (``STREAM_BLOB_BYTES``) and indexed for
search at once; everything else is queued for search by the payload's insert trigger and indexed
later (app/store/indexing.py).

Who calls what, and where (app/store/recorder.py): ``write_now`` on the event loop, through the
loop's own connection, when the write lock is free; ``write``, ``index`` and ``checkpoint`` in
the writer's native thread, through pooled connections.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from app.store import answers, batch_rows, engine, indexing, sqlite_rows
from app.store import batch as batches
from app.store.answers import AnswerNote
from app.store.batch import NUMBERED_COLUMNS, Numbered, Pending
from app.store.errors import StorageUnavailable, contended, discard
from app.store.writer import Writer

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
        # The indexer's connection (index()), with its TEMP trigger; used by one caller at a time.
        self._indexing: Any = None
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
            for sql, rows in answers.statements(notes, sqlite_rows.stored_time):
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

    def index(self, limit: int = indexing.INDEX_BATCH) -> bool:
        """Index up to ``limit`` of the requests queued for search; tell whether more may be queued.

        Through the writer's indexing connection (one caller at a time: the recorder's indexer
        sees to it). Waits for the write lock, so under gevent it runs in the writer's native
        thread, where SQLite's work (one statement, the GIL released) goes on beside the event
        loop.
        """
        conn = self._indexing or self._connect_indexing()
        self._indexing = None  # kept only while it works
        try:
            taken = indexing.index_part(conn.cursor(), limit)
        except sqlite3.Error as err:
            discard(conn)
            raise StorageUnavailable(str(err)) from err
        self._indexing = conn
        return taken >= limit

    def _connect_indexing(self) -> Any:
        conn = self.own(self.checkout())
        conn.detach()  # ours: its TEMP trigger must never reach another pooled use
        conn.cursor().execute(indexing.INDEX_ON_DEQUEUE)
        return conn

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
        summaries, request_ids = sqlite_rows.insert(conn, cur, stored)
        forwards = sqlite_rows.forwards(cur, stored, request_ids, self.forward_lease_seconds)
        dropped, freed = {}, {}
        for b in bins:
            dropped[b.bin_id], freed[b.bin_id] = sqlite_rows.keep(cur, b)
        batches.settle(bins, stored, summaries, dropped, freed)
        if forwards:
            batch_rows.note_forwards(*forwards)
