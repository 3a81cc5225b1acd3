"""Reading SQLite's FTS5 index: one page of a bin's matches, newest first.

New requests are queued for the index by a trigger and indexed in batches (migration 0004,
app/store/indexing.py); ``catch_up`` indexes what is still queued before a search reads.
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import text

from app.extensions import db
from app.store.recorder import recorder_of

from .rows import COLUMNS, Found, filters, read


def catch_up() -> None:
    """Index every queued request, so the session's next read finds them.

    Ends the session's current transaction: a read transaction keeps the snapshot it began with.
    The capture writer's indexer does the work (``Indexer.index_queued``, app/store/indexer.py):
    under gevent in the writer's native thread, so that the event loop goes on serving meanwhile,
    and this greenlet waits.
    """
    if not db.session.scalar(text("SELECT EXISTS (SELECT 1 FROM search_pending)")):
        return
    recorder_of(current_app).indexer.index_queued()
    db.session.commit()


def rows(bin_id, match, limit, before, method, since, until) -> Found:
    """Read up to ``limit`` matches of the FTS5 expression ``match`` with ``seq < before``."""
    # CROSS JOIN makes SQLite walk the index newest first (by rowid, which is requests.id) and
    # stop after `limit` matches, instead of reading every request of the bin. Within a bin ids
    # grow with seq: both are handed out in the capture's transaction, which holds the bin's
    # row (or SQLite's write lock). The cursor becomes an id bound the index can seek to, and
    # seq < before still holds exactly.
    conditions = ["request_search MATCH :match", "requests.bin_id = :bin_id"]
    params: dict[str, object] = {"match": match, "bin_id": bin_id, "limit": limit}
    if before is not None:
        conditions += [
            "request_search.rowid <= (SELECT id FROM requests WHERE bin_id = :bin_id"
            " AND seq < :before ORDER BY seq DESC LIMIT 1)",
            "requests.seq < :before",
        ]
        params["before"] = before
    conditions += filters(method, since, until, params)
    found = read(
        f"SELECT {COLUMNS}"  # noqa: S608 - fixed text; values are bound
        " FROM request_search CROSS JOIN requests ON requests.id = request_search.rowid"
        f" WHERE {' AND '.join(conditions)}"
        " ORDER BY request_search.rowid DESC LIMIT :limit",
        params,
    )
    return Found(found)  # FTS5 keeps word positions: no search needs a budget here
