"""How storage fails: what callers catch, and telling the database's trouble from our bugs."""

from __future__ import annotations

import sqlite3
from typing import Any


class StorageUnavailable(Exception):
    """The database could not store the capture (locked, full, down): nothing was stored."""


class Stale(Exception):
    """The connection was found dead by a batch's first round trip: nothing can have been stored."""


def db_errors() -> tuple[type[BaseException], ...]:
    """The DB-API error classes of the drivers in use, for telling storage trouble from bugs."""
    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)
    try:
        import psycopg
    except ImportError:  # the postgres extra is not installed: PostgreSQL is not in use
        return errors
    return (*errors, psycopg.Error)


def pooled(engine: Any) -> Any:
    """A pooled DB-API connection (pinged first); StorageUnavailable when there is none.

    The pool's reconnect raises the driver's own error, unwrapped (PostgreSQL shutting down or
    not taking connections yet): storage trouble all the same, not a bug.
    """
    from sqlalchemy.exc import DBAPIError

    try:
        return engine.raw_connection()
    except DBAPIError as err:
        raise StorageUnavailable(str(err.orig)) from err
    except db_errors() as err:
        raise StorageUnavailable(str(err)) from err


def contended(err: BaseException | None) -> bool:
    """Tell whether an SQLite error (or the error behind ``err``) only says that another
    connection holds the lock, which waiting cures; not a read-only file or an I/O error."""
    while err is not None:
        code = getattr(err, "sqlite_errorcode", None)
        if code is not None:
            return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
        err = err.__cause__
    return False


def discard(conn: Any) -> None:
    """Roll back what a failed transaction left and drop the connection from the pool: a
    connection in an unknown state is never reused."""
    try:
        conn.rollback()
    except Exception:  # noqa: S110 - the connection is discarded anyway
        pass
    conn.invalidate()
