"""Delete many requests without stalling captures: bounded batches, each a short transaction.

Clearing a bin of 3,000 requests of 30 KB in one statement took 2.3 s, run on the event loop: every
other connection waited for it, captures to other bins up to 2.5 s. Here a bulk deletion (clear,
delete a bin, prune) is a series of steps. Each deletes one batch of a bin's requests (their
payloads and search entries go with them: foreign keys and migration 0004's triggers), takes them
off the bin's ``request_count`` and ``stored_bytes``, and commits. The recorder runs each step in
the writer's order (``Recorder.bulk``): on SQLite in its native thread, queued behind the captures
that came first, so a capture waits for one step at most, never for the whole deletion; on
PostgreSQL each step is a short transaction of its own, and captures to other bins never wait.

A batch is sized to hold the write lock for about ``TARGET_SECONDS``: deleting a request costs
more the bigger its indexed text (SQLite's FTS5 is told the text it removes), so the size follows
what the last step took, within ``MIN_BATCH`` and ``MAX_BATCH``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.store import threads
from app.store.batch import naive_utc
from app.store.errors import StorageUnavailable, db_errors, discard

TARGET_SECONDS = 0.04
MIN_BATCH, FIRST_BATCH, MAX_BATCH = 20, 100, 5000

# Written with "?" (SQLite's); PostgreSQL's "%s" is put in by ``_sql``.
_DELETE = """
DELETE FROM requests WHERE id IN (
  SELECT id FROM requests WHERE bin_id = ? AND seq <= ? AND (pinned = ? OR pinned = ?)
  ORDER BY seq LIMIT ?
)
RETURNING stored_bytes
"""
# The bin's counters lose what went (its stored bytes: app/domain/budgets.py).
_SHRINK = (
    "UPDATE bins SET request_count = request_count - ?, stored_bytes = stored_bytes - ?"
    " WHERE id = ?"
)
_DROP_BIN = "DELETE FROM bins WHERE id = ?"
_STILL_EXPIRED = "SELECT 1 FROM bins WHERE id = ? AND expires_at IS NOT NULL AND expires_at < ?"
_EVERY_SEQ = 2**31 - 1  # seq is a 32-bit integer column


@dataclass
class Deletion:
    """One bulk deletion: which requests go, and how far it got."""

    bin_id: str
    # Only requests up to this seq (a clear: what was there when it was asked); None: all.
    through: int | None = None
    include_pinned: bool = True
    # Then the bin's own row (delete a bin, prune).
    drop_bin: bool = False
    # Prune: go on only while the bin is still expired at this time (a capture renews it).
    expired_at: datetime | None = None
    size: int = FIRST_BATCH
    deleted: int = 0
    done: bool = False
    dropped: bool = False  # the bin's row went


@dataclass
class Job:
    """A deletion queued for the recorder's writer, a step each turn; ``done`` is set at its
    end (app/store/recorder.py)."""

    deletion: Deletion
    done: Any
    error: BaseException | None = None


def run_step(writer: Any, deletion: Deletion, thread: Any = None) -> None:
    """Delete one batch through a connection of the writer's (in ``thread``, a native thread,
    when given) and size the next from how long this one took. Raises StorageUnavailable."""
    conn = writer.own(writer.checkout())
    try:
        started = time.perf_counter()
        if thread is not None:
            threads.run(thread, step, deletion, conn, writer.sqlite)
        else:
            step(deletion, conn, writer.sqlite)
        deletion.size = next_size(deletion.size, time.perf_counter() - started)
    except db_errors() as err:
        discard(conn)
        raise StorageUnavailable(str(err)) from err
    finally:
        conn.close()


def step(deletion: Deletion, conn: Any, sqlite: bool) -> None:
    """Delete one batch in one transaction on a DB-API connection (the caller closes it)."""
    cur = conn.cursor()
    if sqlite:
        cur.execute("BEGIN IMMEDIATE")  # the connection is in autocommit mode (engine.py)
    try:
        expired_at = deletion.expired_at
        if expired_at is not None and not _still_expired(cur, deletion.bin_id, expired_at, sqlite):
            deletion.done = True  # renewed meanwhile: it stays, with what it still has
        else:
            _delete_batch(cur, deletion, sqlite)
        conn.commit()
    except BaseException:
        conn.rollback()
        raise


def _delete_batch(cur: Any, deletion: Deletion, sqlite: bool) -> None:
    through = _EVERY_SEQ if deletion.through is None else deletion.through
    unpinned, other = False, deletion.include_pinned  # (False, True): pinned or not
    cur.execute(_sql(_DELETE, sqlite), (deletion.bin_id, through, unpinned, other, deletion.size))
    freed = [stored_bytes for (stored_bytes,) in cur.fetchall()]
    gone = len(freed)
    if gone:
        cur.execute(_sql(_SHRINK, sqlite), (gone, sum(freed), deletion.bin_id))
        deletion.deleted += gone
    if gone < deletion.size:
        deletion.done = True
        if deletion.drop_bin:
            cur.execute(_sql(_DROP_BIN, sqlite), (deletion.bin_id,))
            deletion.dropped = cur.rowcount > 0


def _still_expired(cur: Any, bin_id: str, at: datetime, sqlite: bool) -> bool:
    naive = naive_utc(at)  # SQLite keeps times as SQLAlchemy's text; PostgreSQL as timestamps
    cur.execute(
        _sql(_STILL_EXPIRED, sqlite),
        (bin_id, naive.isoformat(" ", "microseconds") if sqlite else naive),
    )
    return cur.fetchone() is not None


def next_size(size: int, seconds: float) -> int:
    """The next batch's size, aimed at holding the write lock for about TARGET_SECONDS."""
    if seconds <= 0:
        return min(size * 2, MAX_BATCH)
    aimed = int(size * TARGET_SECONDS / seconds)
    # At most double at a time: one quick batch says little about the next.
    return max(MIN_BATCH, min(aimed, size * 2, MAX_BATCH))


def _sql(statement: str, sqlite: bool) -> str:
    return statement if sqlite else statement.replace("?", "%s")
