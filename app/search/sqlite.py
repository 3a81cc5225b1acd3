"""Reading SQLite's FTS5 index: one page of a bin's matches, newest first."""

from __future__ import annotations

from .rows import COLUMNS, Found, filters, read


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
