"""The capture's write path: store requests in batches, one transaction each (group commit).

Every request a provider sends is stored before it is answered. Committing each one on its own
would make the database's commit the ceiling; instead captures queue up and one writer per process
stores whatever has queued in a single transaction, then wakes every sender of the batch. Nobody
is answered before the commit that holds their capture, and nobody waits for a timer: at low load
a batch is one capture, under a burst it is every capture that arrived during the previous commit.

The writers speak plain DB-API SQL (sqlite3 or psycopg), not the ORM: profiling the per-capture
ORM and Core paths showed SQLAlchemy's own work as the largest cost. On SQLite a batch is written
on the event loop when the database's write lock is free (without waiting for it), and in a native
thread of its own when the lock is taken or the batch is big, so waiting for the lock or the disk
never stalls the event loop that serves every other connection; on PostgreSQL psycopg waits
cooperatively under gevent (app/store/pgwait.py).

On SQLite the recorder's indexer (app/store/indexer.py) indexes for search what the batches
queued, a moment after each burst, in the writer's native thread.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from flask import Flask
from sqlalchemy.engine import Engine

from app.domain import forwarding
from app.domain.capture import Snapshot
from app.extensions import db, under_gevent
from app.runtime import metrics
from app.store import batch as batches
from app.store import bulk, threads
from app.store.answers import AnswerNote
from app.store.batch import Pending, Recorded
from app.store.bulk import Deletion, Job
from app.store.errors import StorageUnavailable
from app.store.indexer import Indexer
from app.store.inflight import Budget, Hold
from app.store.postgres import PostgresWriter
from app.store.sqlite import SqliteWriter
from app.store.writer import Writer

log = logging.getLogger("hookscope.recording")
# A batch stops growing at this many captures or body bytes, to keep transactions short.
MAX_BATCH = 256
MAX_BATCH_BYTES = 32 * 1024 * 1024
# Notes of answers written in one transaction at most.
MAX_NOTES = 1024
# SQLite batches with more body bytes than this are written in the writer's native thread.
INLINE_BATCH_BYTES = 1024 * 1024
EXTENSION = "hookscope.recorder"
# Where the capture gate puts its answerer (app/store/batch.py's Answerer) for the writer.
ANSWERER = "hookscope.answerer"
# A recorder made without a budget (scripts, tests) counts bodies against this.
DEFAULT_BUDGET = 256 * 1024 * 1024


def writer_for(engine: Engine, busy_timeout_ms: int, bin_max_bytes: int | None = None) -> Writer:
    """The writer for the engine's database; ``bin_max_bytes`` is HOOKSCOPE_BIN_MAX_BYTES."""
    kind = SqliteWriter if engine.dialect.name == "sqlite" else PostgresWriter
    return kind(engine, busy_timeout_ms, bin_max_bytes)


def recorder_of(app: Flask) -> Recorder:
    """The app's capture writer: one per process, made on first use (in the worker process:
    gunicorn builds apps in the master too)."""
    recorder = app.extensions.get(EXTENSION)
    if recorder is None:
        with app.app_context():
            writer = writer_for(
                db.engine,
                app.config["HOOKSCOPE_SQLITE_BUSY_TIMEOUT_MS"],
                app.config["HOOKSCOPE_BIN_MAX_BYTES"],
            )
        timeout = app.config["HOOKSCOPE_OUTBOUND_TIMEOUT_SECONDS"]
        writer.forward_lease_seconds = forwarding.lease_seconds(timeout)
        writer.answerer = app.extensions.get(ANSWERER)
        budget = Budget(app.config["HOOKSCOPE_MAX_BODY_BYTES_IN_FLIGHT"])
        recorder = app.extensions[EXTENSION] = Recorder(writer, budget)
    return recorder


class Recorder:
    """One per process: queues captures and writes them in batches (see the module docstring)."""

    def __init__(self, writer: Writer, budget: Budget | None = None) -> None:
        self._writer = writer
        # Body bytes in flight (app/store/inflight.py): each queued capture holds its body's
        # until its batch has ended, so the queue is bounded by the same budget as reading.
        self.in_flight = budget or Budget(DEFAULT_BUDGET)
        self._pending: list[Pending] = []
        # What captures were answered (app/store/answers.py), written after their own batches.
        self._notes: list[AnswerNote] = []
        self._jobs: deque[Job] = deque()
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
            self._thread = ThreadPool(1) if writer.sqlite else None
            writer.checkpoint_apart = writer.sqlite
            self._writing = gevent.spawn(self._run)
        else:
            self._event = threading.Event
            self._lock = threading.Lock()
            self._thread = None
        self.indexer = Indexer(writer, self._thread, self._gevent)

    def record(
        self,
        bin_id: str,
        snap: Snapshot,
        authorization: str | None = None,
        headers_json: str | None = None,
        hold: Hold | None = None,
    ) -> Recorded | None:
        """Store one capture and return once it is committed; None when the bin does not exist.

        ``headers_json`` is ``batch.headers_json(snap.headers)`` when the caller has it already;
        ``hold`` (its body's bytes in flight) is released when the batch's transaction has
        ended. Raises StorageUnavailable when the database could not store it.
        """
        if headers_json is None:
            headers_json = batches.headers_json(snap.headers)
        item = Pending(bin_id, snap, authorization, headers_json)
        item.hold = hold
        if not self._gevent:
            try:
                with self._lock:
                    self._write([item])
            finally:
                _release(item)
            return item.result
        item.done = self._event()
        self._pending.append(item)
        self._wake.set()
        item.done.wait()
        if item.error is not None:
            raise item.error
        return item.result

    def note(self, note: AnswerNote) -> None:
        """Queue a note of what a capture was answered; nobody waits for it to be written."""
        if not self._gevent:
            with self._lock:
                self._write_notes([note])
            return
        self._notes.append(note)
        self._wake.set()

    def bulk(self, deletion: Deletion) -> int:
        """Run a bulk deletion to its end, a bounded batch at a time in the writer's order
        (app/store/bulk.py); return how many requests it deleted. Raises StorageUnavailable.

        On SQLite under gevent the deletion is queued for the writer, which takes turns: a batch
        of captures, then one batch of the deletion (in its native thread). Elsewhere each batch
        is a short transaction of the caller's: PostgreSQL waits cooperatively, and in-process
        (tests, the CLI) batches take the recorder's lock in turn with captures.
        """
        if self._gevent and self._thread is not None:
            job = Job(deletion, self._event())
            self._jobs.append(job)
            self._wake.set()
            job.done.wait()
            if job.error is not None:
                raise job.error
        while not deletion.done:
            if self._gevent:
                self._step(deletion)
            else:
                with self._lock:
                    self._step(deletion)
        return deletion.deleted

    def _step(self, deletion: Deletion) -> None:
        # SQLite under gevent: in the native thread, where waiting for the lock stalls no one.
        bulk.run_step(self._writer, deletion, self._thread)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            while self._pending or self._notes or self._jobs:
                # Captures, notes of answers and bulk deletions take turns.
                if self._pending:
                    self._store(self._take())
                if self._notes:
                    # After each batch: notes gather while a batch commits, so under load a
                    # burst's notes take one transaction, and a steady flow never starves them.
                    notes, self._notes = self._notes[:MAX_NOTES], self._notes[MAX_NOTES:]
                    self._write_notes(notes)
                if self._jobs:
                    self._run_job(self._jobs.popleft())

    def _store(self, batch: list[Pending]) -> None:
        """Write one batch and wake its senders. (Its own frame: once it returns, the writer
        holds no capture, whose body can be 25 MB, while it waits for the next batch.)"""
        if metrics.current is not None:
            metrics.current.batches.observe(len(batch))
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
            _release(item)
            item.done.set()
        self.indexer.stored(len(batch))

    def _run_job(self, job: Job) -> None:
        """Run one step of a queued deletion; queue it again, last, until it is done."""
        try:
            self._step(job.deletion)
        except BaseException as err:  # the caller raises it; the writer goes on
            job.error = err
        self.indexer.stored()  # the indexer checkpoints the WAL the deletion grew
        if job.deletion.done or job.error is not None:
            job.done.set()
        else:
            self._jobs.append(job)

    def _write_notes(self, notes: list[AnswerNote]) -> None:
        """Write notes of answers in a transaction of their own; a failure costs only them."""
        writer = self._writer
        try:
            if self._gevent and not writer.sqlite:
                writer.write_notes_own(notes)
                return
            if self._thread is not None and self._on_loop(lambda: writer.write_notes_own(notes)):
                return  # as for a small batch: here when the write lock is free
            conn = writer.checkout()
            try:
                if self._thread is None:
                    writer.write_notes(conn, notes)
                else:
                    threads.run(self._thread, writer.write_notes, conn, notes)
            finally:
                conn.close()
        except Exception as err:  # the captures are stored; only what they were answered is lost
            log.error("storing what %d capture(s) were answered failed: %s", len(notes), err)

    def _on_loop(self, write: Callable[[], bool]) -> bool:
        """Run ``write``, a write on the loop's own connection that never waits for the lock
        (False when it is taken); when it is, once more after the indexer is idle.

        Waiting here beats handing the write to the thread behind the indexer, where its every
        statement would queue for the GIL behind the busy event loop. Tried before waiting: the
        indexer is busy longer than it holds the lock (the thread's wake-up, the loop's).
        """
        if write():
            return True
        self.indexer.wait_idle()
        return write()

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
        if self._gevent and not self._writer.sqlite:
            self._writer.write_own(batch)
            return
        if self._thread is not None and batches.body_bytes(batch) <= INLINE_BATCH_BYTES:
            if self._on_loop(lambda: self._writer.write_now(batch)):
                return
        conn = self._writer.checkout()  # here, not in the native thread: the pool is gevent's
        try:
            if self._thread is None:
                self._writer.write(conn, batch)
            else:
                threads.run(self._thread, self._writer.write, conn, batch)
        finally:
            conn.close()  # back to the pool (an invalidated one is simply dropped)


def _release(item: Pending) -> None:
    if item.hold is not None:
        item.hold.release()
