"""SQLite: index new requests for search in batches, off the capture's transaction

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

Migration 0003's insert trigger indexed every request inside the transaction that captured it:
computing its text and inserting it into FTS5 was the biggest single cost of a capture (70 to 130
us of 300). Now the insert trigger only queues the request's id in ``search_pending``; whoever
holds the write lock next may index the queue in one statement (app/search.py
``index_pending``). The capture writer's native thread does so a moment after each burst, where
SQLite's C code runs beside the event loop instead of in it, and every search first indexes
what is still queued, so a search never misses a stored request.

The queue keeps FTS5's external-content rule (it must be told the exact text of a row it removes,
and only of rows it holds): a request still queued is not in the index, so deleting or changing it
only takes it off the queue; one already indexed is removed from the index as before. Whatever
inserts, deletes or updates ``requests`` and ``payloads`` (the capture path, retention, clear,
delete, a bin's cascade, a bulk load, a script) still keeps the index right without knowing it
exists; a reused row id is queued afresh.

PostgreSQL is unchanged: its tsvector is computed by a BEFORE INSERT trigger on the row itself,
and its writers scale out across processes.

A later migration that rebuilds ``requests`` or ``payloads`` on SQLite must call
``drop_sqlite()`` first and ``create_sqlite()`` after (which use 0003's view and table), then
queue every request again: ``INSERT INTO search_pending SELECT id FROM requests`` after emptying
the FTS table with its 'delete-all' command.
"""

import importlib

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

fts = importlib.import_module("app.migrations.versions.0003_full_text_search")

QUEUE = "CREATE TABLE search_pending (request_id INTEGER PRIMARY KEY)"


def _queue(id_):
    return f"  INSERT OR IGNORE INTO search_pending(request_id) VALUES ({id_});\n"


def _unindex(id_):
    """Take a request out of the index if it is there, and off the queue if it is queued."""
    return f"""
  INSERT INTO request_search(request_search, rowid, bin, target, headers, body)
  SELECT 'delete', id, bin, target, headers, body FROM request_search_source
  WHERE id = {id_} AND NOT EXISTS (SELECT 1 FROM search_pending WHERE request_id = {id_});
  DELETE FROM search_pending WHERE request_id = {id_};
"""


TRIGGERS = [
    ("payloads_search_insert", "AFTER INSERT ON payloads", _queue("NEW.request_id")),
    # In a cascade from requests the request row is already gone and this finds nothing to do;
    # it matters when a payload is deleted on its own.
    ("payloads_search_delete", "BEFORE DELETE ON payloads", _unindex("OLD.request_id")),
    ("requests_search_delete", "BEFORE DELETE ON requests", _unindex("OLD.id")),
    # Captured data is never changed, but if a script does, the index follows: out now, back in
    # with the queue.
    (
        "payloads_search_unindex",
        "BEFORE UPDATE OF request_id, headers, body ON payloads",
        _unindex("OLD.request_id"),
    ),
    (
        "payloads_search_reindex",
        "AFTER UPDATE OF request_id, headers, body ON payloads",
        _queue("NEW.request_id"),
    ),
    (
        "requests_search_unindex",
        "BEFORE UPDATE OF id, bin_id, method, path, query_string, content_type ON requests",
        _unindex("OLD.id"),
    ),
    (
        "requests_search_reindex",
        "AFTER UPDATE OF id, bin_id, method, path, query_string, content_type ON requests",
        _queue("NEW.id"),
    ),
]


def create_sqlite():
    """Create 0003's view and FTS5 table, the queue, and the triggers that keep them (empty)."""
    op.execute(fts.SQLITE_VIEW)
    op.execute(fts.SQLITE_TABLE)
    op.execute(QUEUE)
    _create_triggers(TRIGGERS)


def drop_sqlite():
    _drop_triggers(TRIGGERS)
    op.execute("DROP TABLE IF EXISTS search_pending")
    op.execute("DROP TABLE IF EXISTS request_search")
    op.execute("DROP VIEW IF EXISTS request_search_source")


def _create_triggers(triggers):
    for name, when, body in triggers:
        op.execute(f"CREATE TRIGGER {name} {when} FOR EACH ROW BEGIN\n{body}END")


def _drop_triggers(triggers):
    for name, _, _ in triggers:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")


def upgrade():
    if op.get_bind().dialect.name != "sqlite":
        return
    _drop_triggers(fts.SQLITE_TRIGGERS)
    op.execute(QUEUE)  # empty: 0003's triggers left every request indexed
    _create_triggers(TRIGGERS)


def downgrade():
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(
        "INSERT INTO request_search(rowid, bin, target, headers, body)"
        " SELECT id, bin, target, headers, body FROM request_search_source"
        " WHERE id IN (SELECT request_id FROM search_pending)"
    )
    _drop_triggers(TRIGGERS)
    op.execute("DROP TABLE search_pending")
    _create_triggers(fts.SQLITE_TRIGGERS)
