"""The operator's view of every bin: biggest first, keyset-paginated, never a secret.

Sorts are a table (``SORTS``): each names the value a page is ordered by, biggest first, ties by
bin id; the cursor is ``<value>.<bin id>`` of the last row, taken from the same statement that
ordered the page, so it always matches the order it continues.

- ``bytes`` reads the ``bins`` rows only (their counters are kept by the writers), walking the
  index on ``(stored_bytes, id)`` from its top, so a page costs the same with 100 bins or
  100,000 (bench/budgets.py, "admin").
- ``traffic`` orders by captures plus refusals in the last day (app/store/usage.py's periods).
  Each page is one statement, but it sums the last day's ``bin_usage`` rows per bin (up to 144
  periods per bin and reason; SQLite reads the whole table, two days kept, in its key's order to
  group them) and LEFT JOINs the sums to every bin, then sorts them all: its cost grows with the
  bins and the usage rows, for every page. Traffic moves between pages, and an old period
  leaves the window every 10 minutes: a bin whose count changed meanwhile may show on two pages
  or on none, as a bin whose bytes changed may under ``bytes``.

Every row carries its traffic (captures and refusals in the last hour and day, refusals by
reason), read for the whole page in one query (``usage.recent``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import BigInteger, Select, cast, func, select, tuple_

from app.domain.budgets import effective_max_bytes
from app.domain.models import Bin, BinUsage
from app.domain.shapes import isoformat
from app.extensions import db
from app.store import usage

PAGE_DEFAULT, PAGE_MAX = 50, 500


class Traffic(TypedDict):
    """A bin's captures and refusals in the last hour (60-70 minutes) and the last day."""

    captures_hour: int
    captures_day: int
    refusals_hour: int
    refusals_day: int
    refusals_by_reason: dict[str, dict[str, int]]  # reason -> {"hour": n, "day": n}


@dataclass(frozen=True)
class Row:
    """One bin as the operator sees it: no read key, no ingest secret."""

    id: str
    name: str
    created_by: str | None
    created_at: datetime
    request_count: int
    stored_bytes: int
    max_bytes: int | None  # the bin's own budget; None follows HOOKSCOPE_BIN_MAX_BYTES
    last_capture_at: datetime | None
    expires_at: datetime | None
    fixed: bool
    traffic: Traffic | None = None

    def to_dict(self, bin_max_bytes: int | None) -> dict[str, Any]:
        """The one shape of the admin API, page and command; ``bin_max_bytes`` is the
        operator's ceiling."""
        return {
            "id": self.id,
            "name": self.name,
            "created_by": self.created_by,
            "created_at": isoformat(self.created_at),
            "request_count": self.request_count,
            "stored_bytes": self.stored_bytes,
            "max_bytes": effective_max_bytes(self.max_bytes, bin_max_bytes),
            "last_capture_at": isoformat(self.last_capture_at) if self.last_capture_at else None,
            "expires_at": isoformat(self.expires_at) if self.expires_at else None,
            "fixed": self.fixed,
            "traffic": self.traffic,
        }


_COLUMNS = (
    Bin.id,
    Bin.name,
    Bin.created_by,
    Bin.created_at,
    Bin.request_count,
    Bin.stored_bytes,
    Bin.max_bytes,
    Bin.last_capture_at,
    Bin.expires_at,
    Bin.fixed,
)


def _by_bytes(query: Select[Any], since: int) -> tuple[Select[Any], Any]:
    return query, Bin.stored_bytes


def _by_traffic(query: Select[Any], since: int) -> tuple[Select[Any], Any]:
    day = (
        select(BinUsage.bin_id, func.sum(BinUsage.count).label("total"))
        .where(BinUsage.period >= since)
        .group_by(BinUsage.bin_id)
        .subquery("day")
    )
    # No usage rows in the last day: 0, so those bins come last, by id.
    value = cast(func.coalesce(day.c.total, 0), BigInteger)
    return query.outerjoin(day, day.c.bin_id == Bin.id), value


# What the listing can be sorted by, biggest first: given the query of the bins' columns and
# the start of the last day's first period, the query to run and the value to order by.
SORTS: dict[str, Callable[[Select[Any], int], tuple[Select[Any], Any]]] = {
    "bytes": _by_bytes,
    "traffic": _by_traffic,
}


class BadCursor(ValueError):
    """A cursor this listing did not hand out."""


def parse_cursor(raw: str) -> tuple[int, str]:
    """Read ``<value>.<bin id>`` (ids hold no dot)."""
    value, dot, bin_id = raw.partition(".")
    if not dot or not value.isdigit() or not value.isascii() or not bin_id or len(value) > 19:
        raise BadCursor(raw)
    return int(value), bin_id


def traffic_of(recent: usage.Recent) -> Traffic:
    """A bin's traffic in the admin shape, from its recent usage."""
    return {
        "captures_hour": recent["captures_hour"],
        "captures_day": recent["captures_day"],
        "refusals_hour": recent["refused_hour"],
        "refusals_day": recent["refused_day"],
        "refusals_by_reason": recent["by_reason"],
    }


def page(
    limit: int = PAGE_DEFAULT,
    after: str | None = None,
    sort: str = "bytes",
    now: float | None = None,
) -> tuple[list[Row], str | None]:
    """List bins biggest first (ties by id), with their traffic; return the page and the cursor
    of the next."""
    now = time.time() if now is None else now
    limit = max(1, min(limit, PAGE_MAX))
    query, value = SORTS[sort](select(*_COLUMNS), usage.period_of(now) - usage.DAY)
    query = query.add_columns(value).order_by(value.desc(), Bin.id.desc()).limit(limit + 1)
    if after is not None:
        last_value, bin_id = parse_cursor(after)
        query = query.where(tuple_(value, Bin.id) < tuple_(last_value, bin_id))
    found = db.session.execute(query).all()
    more = len(found) > limit
    found = found[:limit]
    cursor = f"{int(found[-1][-1])}.{found[-1].id}" if more else None
    # Same "now" as the sort: a row's traffic counts the same periods as its place.
    recent = usage.recent([f.id for f in found], now=now)
    rows = [replace(Row(*f[:-1]), traffic=traffic_of(recent[f.id])) for f in found]
    return rows, cursor
