"""Database engine behaviour: SQLite tuned for concurrent writers, and write transactions.

SQLite is the embedded default. WAL lets readers run beside the one writer; ``busy_timeout`` makes a
writer wait for the lock instead of failing; and every write transaction starts with
``BEGIN IMMEDIATE`` so it takes the write lock up front. A deferred transaction that reads and then
writes can fail at once with "database is locked" (SQLITE_BUSY_SNAPSHOT) whatever the timeout.

PostgreSQL under gevent: connections wait for their socket as app/store/pgwait.py explains.
"""

from __future__ import annotations

import logging
import sqlite3
import time

from flask import Flask, current_app
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from app import internals
from app.extensions import db, under_gevent
from app.internals import Reliance

_WRITE = "hookscope_write"
# Execution options that make a connection's next transaction a write transaction.
WRITE = {_WRITE: True}
# How long the write check waits for SQLite's lock: a capture holds it for milliseconds.
CHECK_BUSY_TIMEOUT_MS = 1000
# Open pages ask while storage is failing; one real check a second per process answers them all.
CHECK_EVERY_SECONDS = 1.0
log = logging.getLogger("hookscope.storage")
_CHECKED = "hookscope.storage_checked"
# What app/store/pgwait.py relies on in psycopg (app/internals.py); without it PostgreSQL
# connections keep psycopg's own wait.
RELIANCES = tuple(
    Reliance(
        "psycopg",
        part,
        "on PostgreSQL every round trip would wait a turn of the event loop more",
        fallback=True,
        needs="psycopg",
    )
    for part in ("psycopg.errors:_WaitTimeout", "psycopg:Connection.wait")
)


def init_app(app: Flask) -> None:
    """Tune every SQLite connection the app opens; under gevent, every PostgreSQL one."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        _tune_sqlite(engine, app.config["HOOKSCOPE_SQLITE_BUSY_TIMEOUT_MS"])
    elif engine.dialect.name == "postgresql" and under_gevent():
        if internals.usable(*RELIANCES):
            from app.store import pgwait  # psycopg: the postgres extra

            pgwait.install(engine)


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


def writable() -> bool:
    """Tell whether the database would take a write now (checked at most once a second).

    Takes the write lock (SQLite) or opens a read-write transaction (PostgreSQL, which refuses on
    a read-only standby) and writes nothing. A full disk shows only when a real write fails.
    """
    checked_at, ok = current_app.extensions.get(_CHECKED, (float("-inf"), True))
    if time.monotonic() - checked_at < CHECK_EVERY_SECONDS:
        return ok
    try:
        with db.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                _check_sqlite(conn)
            else:
                with conn.begin():
                    conn.exec_driver_sql("SET TRANSACTION READ WRITE")
        ok = True
    except DBAPIError as err:
        log.warning("storage does not take writes: %s", err.__class__.__name__)
        ok = False
    current_app.extensions[_CHECKED] = (time.monotonic(), ok)
    return ok


def _check_sqlite(conn: Connection) -> None:
    configured = int(current_app.config["HOOKSCOPE_SQLITE_BUSY_TIMEOUT_MS"])
    # Straight on the driver's connection: through SQLAlchemy a PRAGMA would open a transaction.
    raw = conn.connection.dbapi_connection
    raw.execute(f"PRAGMA busy_timeout = {min(configured, CHECK_BUSY_TIMEOUT_MS)}")
    try:
        with conn.execution_options(**WRITE).begin():
            pass  # BEGIN IMMEDIATE took the write lock: a capture could commit now
    finally:
        raw.execute(f"PRAGMA busy_timeout = {configured}")
