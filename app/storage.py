"""Database engine behaviour: SQLite tuned for concurrent writers, and write transactions.

SQLite is the embedded default. WAL lets readers run beside the one writer; ``busy_timeout`` makes a
writer wait for the lock instead of failing; and every write transaction starts with
``BEGIN IMMEDIATE`` so it takes the write lock up front. A deferred transaction that reads and then
writes can fail at once with "database is locked" (SQLITE_BUSY_SNAPSHOT) whatever the timeout.
"""

from __future__ import annotations

import sqlite3

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from .extensions import db

_WRITE = "hookscope_write"
# Execution options that make a connection's next transaction a write transaction.
WRITE = {_WRITE: True}


def init_app(app: Flask) -> None:
    """Tune every SQLite connection the app opens."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        _tune_sqlite(engine, app.config["HOOKSCOPE_SQLITE_BUSY_TIMEOUT_MS"])


def _tune_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        tune_sqlite_connection(dbapi_conn, busy_timeout_ms)

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        immediate = conn.get_execution_options().get(_WRITE)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def tune_sqlite_connection(dbapi_conn: sqlite3.Connection, busy_timeout_ms: int) -> None:
    """Set up an sqlite3 connection the way every Hookscope connection works."""
    # Take transaction control from the sqlite3 module so "begin" below decides the BEGIN kind.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    cur.execute("PRAGMA journal_mode = WAL")
    # NORMAL in WAL mode survives a process crash (a kill -9); only an OS crash can lose the
    # last commits, and it never corrupts the file.
    cur.execute("PRAGMA synchronous = NORMAL")
    cur.execute("PRAGMA foreign_keys = ON")
    cur.close()


def begin_write() -> None:
    """Start the session's next transaction as a write transaction.

    Ends any read transaction first: upgrading a read to a write is what deadlocks in SQLite.
    """
    session = db.session()
    if session.in_transaction():
        session.commit()
    session.connection(execution_options=WRITE)
