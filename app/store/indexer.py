"""SQLite: index what captures queued for search, and checkpoint the WAL, beside the recorder.

On SQLite the payload's insert trigger only queues the request for search (migration 0004); the
recorder's indexer indexes the queue a moment later, one statement for a whole burst, in the
writer's native thread (app/store/indexing.py). Indexing inside each capture's transaction cost
more than a third of the capture's time on the event loop. The recorder tells it when a batch was
stored, and waits for it to be idle before writing a batch on the event loop.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from app.store import threads
from app.store.errors import StorageUnavailable
from app.store.writer import Writer

log = logging.getLogger("hookscope.recording")
# SQLite: how long after a stored batch the requests it queued for search are indexed, so that a
# burst's captures are indexed by one statement.
INDEX_AFTER_SECONDS = 0.05
# SQLite: the WAL is copied back into the database at most this often (the writers turn SQLite's
# own checkpoint off, which would run in the committing batch, on the event loop).
CHECKPOINT_EVERY_SECONDS = 1.0


class Indexer:
    """One per Recorder: indexes what its batches queued for search (SQLite, under gevent)."""

    def __init__(self, writer: Writer, thread: Any, on_gevent: bool) -> None:
        self._writer = writer
        # The writer's native thread (SQLite under gevent); None: index where asked.
        self._thread = thread
        if on_gevent:
            import gevent
            from gevent.event import Event
            from gevent.lock import Semaphore

            # SQLite: new requests are queued for search (migration 0004) and indexed here.
            self._stored = Event()
            self._running = gevent.spawn(self._run) if writer.sqlite else None
            self._idle = Event()
            self._idle.set()
            self._turn = Semaphore()
        else:
            self._running = None
            self._idle = threading.Event()
            self._idle.set()
            self._turn = threading.Lock()

    def stored(self) -> None:
        """Say a batch was stored: what it queued is indexed a moment later."""
        if self._running is not None:
            self._stored.set()

    def wait_idle(self) -> None:
        """Wait while a batch of the queue is being indexed (it holds the write lock)."""
        self._idle.wait()

    def _run(self) -> None:
        """Index what bursts of captures queued for search, a moment after each burst began.

        In the native thread: one statement indexes the whole batch there, the GIL released,
        while the event loop goes on taking captures (a batch that finds the write lock taken
        queues for the thread behind it). A search indexes whatever is still queued itself.
        """
        import gevent

        checkpointed = time.monotonic()
        while True:
            self._stored.wait()
            gevent.sleep(INDEX_AFTER_SECONDS)  # let the burst gather into one statement
            self._stored.clear()
            try:
                self.index_queued()
                if time.monotonic() - checkpointed >= CHECKPOINT_EVERY_SECONDS:
                    checkpointed = time.monotonic()
                    self._checkpoint()
            except StorageUnavailable as err:  # the next stored batch, or a search, tries again
                log.warning("indexing queued requests for search failed: %s", err)
            except Exception:  # a bug: keep the indexer alive; searches still index for themselves
                log.exception("indexing queued requests for search failed")

    def _checkpoint(self) -> None:
        """Checkpoint the WAL in the native thread; captures neither wait for it nor stop it.

        Not while holding the indexer's turn: a checkpoint takes no write lock, and batches
        waiting for the index to be done would otherwise wait for the database file's sync too.
        """
        conn = self._writer.checkout()
        try:
            threads.run(self._thread, self._writer.checkpoint, conn)
        finally:
            conn.close()

    def index_queued(self) -> None:
        """Index everything queued for search (SQLite), then return. Raises StorageUnavailable.

        Under gevent the event loop stays free meanwhile: the queue is indexed a batch at a time
        in the native thread, and captures' batches go in between. A queue can be long: requests
        written into the database by something other than this app, or an indexer that kept
        failing (on the loop, a million queued requests stalled the worker for a minute).
        """
        with self._turn:  # one at a time: the indexer's, or a search's
            while True:
                conn = self._writer.checkout()
                self._idle.clear()
                try:
                    if self._thread is None:
                        more = self._writer.index(conn)
                    else:
                        more = threads.run(self._thread, self._writer.index, conn)
                finally:
                    self._idle.set()
                    conn.close()
                if not more:
                    return
