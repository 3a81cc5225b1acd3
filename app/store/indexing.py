"""SQLite: index the requests queued for search, and index a streamed body at once.

The payload's insert trigger only queues a new request in ``search_pending`` (migration 0004);
``index_part`` indexes the queue through the view ``request_search_source`` (migration 0003),
one statement for a part of it: deleting queued requests, which a TEMP trigger of the indexer's
own connection indexes. A body written through the blob API is indexed at once instead
(``index_streamed``): left to the queue, the view would read the whole body, twice.

What the view computes is the schema's, made by the migrations; the few of its terms that
``index_streamed`` repeats are written out again here, because migrations are history and app
code never imports them. tests/test_search.py compares these with migration 0003's and what the
index holds with what the view says.
"""

from __future__ import annotations

from typing import Any

# The body's head that the index holds, and the form bodies whose percent-escapes of
# punctuation are read as spaces (migration 0003's BODY_LIMIT, FORM and ESCAPES).
BODY_LIMIT = 65536
FORM = "application/x-www-form-urlencoded%"
ESCAPES = [f"%{ord(c):02X}" for c in ' "#%&+,/:=?@[]{}']
# The most queued requests one statement indexes, so the write lock is held briefly.
INDEX_BATCH = 2000
# The smallest part the recorder's indexer indexes between captures' batches (more when batches
# are big or the queue outlasts a run's first 50 ms): a capture arriving meanwhile waits about
# 0.2 ms (10 us a request and 35 us a statement; 50 at once held the lock 0.5 ms, long enough to
# show in live latency's p99).
BETWEEN_CAPTURES = 16


def unescaped(expression: str) -> str:
    """SQL for ``expression`` with each punctuation escape made a space."""
    for escape in ESCAPES:
        expression = f"replace({expression}, '{escape}', ' ')"
    return expression


# The view's row for one request, with its body's indexed head bound as ?1 instead of read from
# the stored body; the request is ?2. Built from the constants above only, never from input.
_HEAD = "?1"
_INDEX_STREAMED = f"""
INSERT INTO request_search(rowid, bin, target, headers, body)
SELECT s.id, s.bin, s.target, s.headers, CASE
      WHEN instr({_HEAD}, x'00') > 0 THEN NULL
      WHEN r.content_type LIKE '{FORM}' THEN {unescaped(f"CAST({_HEAD} AS TEXT)")}
      ELSE CAST({_HEAD} AS TEXT)
    END
FROM request_search_source AS s JOIN requests AS r ON r.id = s.id WHERE s.id = ?2
"""  # noqa: S608
_DEQUEUE = "DELETE FROM search_pending WHERE request_id = ?"
# The indexer's connection only: taking a request off the queue indexes it. TEMP, so that no
# other connection's deletions from the queue (a queued request deleted, which must leave the
# index as it is) index anything.
INDEX_ON_DEQUEUE = """
CREATE TEMP TRIGGER IF NOT EXISTS search_index_on_dequeue
BEFORE DELETE ON main.search_pending FOR EACH ROW BEGIN
  INSERT INTO request_search(rowid, bin, target, headers, body)
  SELECT id, bin, target, headers, body FROM request_search_source WHERE id = OLD.request_id;
END
"""
# With INDEX_ON_DEQUEUE: index up to ? queued requests, lowest ids first, in one statement.
_DEQUEUE_AND_INDEX = (
    "DELETE FROM search_pending WHERE request_id IN"
    " (SELECT request_id FROM search_pending ORDER BY request_id LIMIT ?)"
)


def index_part(cur: Any, limit: int = INDEX_BATCH) -> int:
    """Index up to ``limit`` queued requests in one statement, its own transaction; return how
    many were queued. ``cur`` is a cursor of a connection in autocommit mode with
    INDEX_ON_DEQUEUE.

    One statement holds the write lock only while SQLite works, the GIL released throughout. In
    a transaction of several statements, each next one waits for the GIL, held by the busy event
    loop, with the write lock taken: the lock was held for 0.7 ms where SQLite's work took 0.2.
    """
    return cur.execute(_DEQUEUE_AND_INDEX, (limit,)).rowcount


def index_streamed(cur: Any, request_id: int, body: bytes | bytearray) -> None:
    """Index a request whose body was just written through the blob API, and unqueue it."""
    cur.execute(_INDEX_STREAMED, (bytes(memoryview(body)[:BODY_LIMIT]), request_id))
    cur.execute(_DEQUEUE, (request_id,))
