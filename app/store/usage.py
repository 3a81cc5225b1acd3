"""What each bin took and refused, per 10-minute period: added in batches, read for recent totals.

Each process counts in memory (app/ingest/tally.py) and adds its counts here every few seconds,
one transaction for everything counted meanwhile; nothing is written per request. Periods of 10
minutes, not hours, so that "the last hour" is the last 60 to 70 minutes rather than up to two
hours. Kept for ``KEEP_SECONDS``; the janitor prunes older periods.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, NamedTuple, TypedDict

from sqlalchemy import case, delete, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from app.domain.models import BinUsage
from app.domain.refusals import CAPTURED
from app.extensions import db, under_gevent
from app.store.engine import begin_write
from app.store.errors import StorageUnavailable, db_errors, discard

PERIOD_SECONDS = 600
HOUR = 3600
DAY = 24 * HOUR
KEEP_SECONDS = 2 * DAY

# A bin deleted since its requests were counted has no row to count against: skipped.
_ADD = """
INSERT INTO bin_usage (bin_id, period, reason, count, bytes)
SELECT ?, CAST(? AS INTEGER), ?, CAST(? AS BIGINT), CAST(? AS BIGINT)
WHERE EXISTS (SELECT 1 FROM bins WHERE id = ?)
ON CONFLICT (bin_id, period, reason) DO UPDATE
SET count = bin_usage.count + excluded.count, bytes = bin_usage.bytes + excluded.bytes
"""


class Counted(NamedTuple):
    """One bin's count for one reason in one period."""

    bin_id: str
    period: int
    reason: str
    count: int
    bytes: int


class Recent(TypedDict):
    captures_hour: int
    captures_day: int
    bytes_hour: int
    bytes_day: int
    refused_hour: int
    refused_day: int
    by_reason: dict[str, dict[str, int]]  # reason -> {"hour": n, "day": n}


def period_of(unix_time: float) -> int:
    """The start of the period that holds this moment (Unix seconds)."""
    return int(unix_time) // PERIOD_SECONDS * PERIOD_SECONDS


def add(engine: Engine, counted: list[Counted]) -> None:
    """Add counts to what is stored, in one transaction. Raises StorageUnavailable.

    On SQLite under gevent the transaction runs in a native thread: waiting for the write lock
    there stalls nobody.
    """
    if not counted:
        return
    sqlite = engine.dialect.name == "sqlite"
    try:
        conn = engine.raw_connection()  # here, not in the native thread: the pool is gevent's
    except DBAPIError as err:
        raise StorageUnavailable(str(err.orig)) from err
    try:
        if sqlite and under_gevent():
            import gevent

            gevent.get_hub().threadpool.apply(_add, (conn, counted, sqlite))
        else:
            _add(conn, counted, sqlite)
    finally:
        conn.close()


def _add(conn: Any, counted: list[Counted], sqlite: bool) -> None:
    rows = [(*c, c.bin_id) for c in sorted(counted)]  # one order everywhere: no deadlocks
    try:
        cur = conn.cursor()
        if sqlite:
            cur.execute("BEGIN IMMEDIATE")
            cur.executemany(_ADD, rows)
        else:
            cur.executemany(_ADD.replace("?", "%s"), rows)
        conn.commit()
    except BaseException as err:
        discard(conn)
        if isinstance(err, db_errors()):
            raise StorageUnavailable(str(err)) from err
        raise


def recent(bin_ids: Iterable[str], now: float | None = None) -> dict[str, Recent]:
    """Each bin's captures, bytes and refusals (by reason) in the last hour and the last day.

    "The last hour" is the periods that began at most an hour before the current one began:
    60 to 70 minutes; "the last day" likewise.
    """
    ids = list(dict.fromkeys(bin_ids))
    totals: dict[str, Recent] = {bin_id: _zero() for bin_id in ids}
    if not ids:
        return totals
    current = period_of(time.time() if now is None else now)
    in_hour = BinUsage.period >= current - HOUR
    query = (
        select(
            BinUsage.bin_id,
            BinUsage.reason,
            func.sum(case((in_hour, BinUsage.count), else_=0)),
            func.sum(BinUsage.count),
            func.sum(case((in_hour, BinUsage.bytes), else_=0)),
            func.sum(BinUsage.bytes),
        )
        .where(BinUsage.bin_id.in_(ids), BinUsage.period >= current - DAY)
        .group_by(BinUsage.bin_id, BinUsage.reason)
    )
    for bin_id, reason, hour, day, bytes_hour, bytes_day in db.session.execute(query):
        entry = totals[bin_id]
        if reason == CAPTURED:
            entry["captures_hour"], entry["captures_day"] = int(hour), int(day)
            entry["bytes_hour"], entry["bytes_day"] = int(bytes_hour), int(bytes_day)
            continue
        entry["by_reason"][reason] = {"hour": int(hour), "day": int(day)}
        entry["refused_hour"] += int(hour)
        entry["refused_day"] += int(day)
    return totals


def _zero() -> Recent:
    return {
        "captures_hour": 0,
        "captures_day": 0,
        "bytes_hour": 0,
        "bytes_day": 0,
        "refused_hour": 0,
        "refused_day": 0,
        "by_reason": {},
    }


def prune(now: float | None = None) -> int:
    """Delete the periods older than KEEP_SECONDS; return how many rows went."""
    oldest = period_of(time.time() if now is None else now) - KEEP_SECONDS
    begin_write()
    result = db.session.execute(delete(BinUsage).where(BinUsage.period < oldest))
    db.session.commit()
    return result.rowcount or 0
