"""SQLite: index what captures queued for search, and checkpoint the WAL, beside the recorder.

On SQLite the payload's insert trigger only queues the request for search (migration 0004); the
recorder's indexer indexes the queue a moment after a burst began, in the writer's native thread
(app/store/indexing.py), a part right after each batch the recorder stores, one statement a part.
Indexing inside each capture's transaction cost more than a third of the capture's time on the
event loop. The recorder tells it when a batch was stored; a batch that finds the write lock
taken by a part waits for the indexer to be idle, on the loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from app.store import indexing, threads
from app.store.errors import StorageUnavailable
from app.store.writer import Writer

log = logging.getLogger("hookscope.recording")
# SQLite: how long after a stored batch the requests it queued for search are indexed, so that a
# burst's captures are indexed by one statement.
INDEX_AFTER_SECONDS = 0.05
# SQLite: the WAL is copied back into the database at most this often (the writers turn SQLite's
# own checkpoint off, which would run in the committing batch, on the event loop).
CHECKPOINT_EVERY_SECONDS = 1.0
# SQLite: how long the indexer waits for a batch to be stored before it indexes the next part of
# the queue all the same (no more captures are coming).
GAP_WAIT_SECONDS = 0.002


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
            self._latest = 0  # captures in the batch stored last
            # When the indexer's current run began, and its part size now (_after_next_batch).
            self._began, self._part = 0.0, indexing.BETWEEN_CAPTURES
            self._running = gevent.spawn(self._run) if writer.sqlite else None
            self._idle = Event()
            self._idle.set()
            self._turn = Semaphore()
        else:
            self._running = None
            self._idle = threading.Event()
            self._idle.set()
            self._turn = threading.Lock()

    def stored(self, captures: int = 0) -> None:
        """Say a batch of ``captures`` was stored: what it queued is indexed a moment later."""
        if self._running is not None:
            self._latest = captures
            self._stored.set()

    def wait_idle(self) -> None:
        """Wait while a part of the queue is being indexed (it may hold the write lock)."""
        self._idle.wait()

    def _run(self) -> None:
        """Index what bursts of captures queued for search, a moment after each burst began.

        In the native thread, a part after each stored batch (``_after_next_batch``), one
        statement each, the GIL released, while the event loop goes on taking captures. A search
        indexes whatever is still queued itself.
        """
        import gevent

        checkpointed = time.monotonic()
        while True:
            self._stored.wait()
            gevent.sleep(INDEX_AFTER_SECONDS)  # let the burst gather
            self._stored.clear()
            self._began, self._part = time.monotonic(), indexing.BETWEEN_CAPTURES
            try:
                self.index_queued(self._after_next_batch)
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

    def _after_next_batch(self) -> int:
        """Wait until the next batch is stored, or GAP_WAIT_SECONDS when none comes; return how
        many queued requests to index now: twice that batch's captures, at least
        BETWEEN_CAPTURES, so that the queue shrinks while captures keep coming, and more each
        time once the run has lasted INDEX_AFTER_SECONDS.

        A part indexed right after a batch runs while its captures are answered and their
        senders send again; started at any moment, it would as often hold the write lock just
        when the next capture is to be stored (one watcher's captures back to back: 4% of them
        waited 0.2 to 5 ms).
        """
        self._stored.clear()
        self._latest = 0
        self._stored.wait(GAP_WAIT_SECONDS)
        if time.monotonic() - self._began > INDEX_AFTER_SECONDS:
            # Captures come faster than parts (a saturating load: the thread waits for the GIL
            # behind the busy loop): bigger parts, so that the queue cannot grow without end.
            self._part = min(2 * self._part, indexing.INDEX_BATCH)
        return max(self._part, 2 * self._latest)

    def index_queued(self, next_part: Callable[[], int] = lambda: indexing.INDEX_BATCH) -> None:
        """Index everything queued for search (SQLite), then return. Raises StorageUnavailable.

        Under gevent the event loop stays free meanwhile: the queue is indexed a part at a time
        (``next_part()`` requests, asked before each) in the native thread, and captures'
        batches go in between, first: a batch that waited for a part to be indexed is written
        before the next part begins. A queue can be long: requests written into the database by
        something other than this app, or an indexer that kept failing (on the loop, a million
        queued requests stalled the worker for a minute).
        """
        with self._turn:  # one at a time: the indexer's, or a search's
            while True:
                limit = next_part()
                self._idle.clear()
                try:
                    if self._thread is None:
                        more = self._writer.index(limit)
                    else:
                        more = threads.run(self._thread, self._writer.index, limit)
                finally:
                    self._idle.set()
                if not more:
                    return
                if self._thread is not None:
                    # Batches waiting in wait_idle() were woken by set(); let them take the
                    # write lock on the loop before the next part takes it in the thread.
                    import gevent

                    gevent.sleep(0)
