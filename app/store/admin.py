"""The operator's view of every bin: biggest first, keyset-paginated, never a secret.

Reads the ``bins`` rows only (their counters are kept by the writers), walking the index on
``(stored_bytes, id)`` from its top, so a page costs the same with 100 bins or 100,000
(bench/budgets.py, "admin"). The instance's totals come from app/store/budget.py's figures.

Sorts are a table: a new one (traffic, once bins count their captures and refusals per hour)
is a row in ``SORTS`` naming its column; the cursor is ``<value>.<bin id>`` of the last row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_

from app.domain.budgets import effective_max_bytes
from app.domain.models import Bin, isoformat
from app.extensions import db

PAGE_DEFAULT, PAGE_MAX = 50, 500
# What the listing can be sorted by, biggest first: the column and its cursor's type.
SORTS: dict[str, Any] = {"bytes": Bin.stored_bytes}


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
            # Captures and refusals in the last hour and day, once bins count them per hour:
            # {"captures_hour", "captures_day", "refusals_hour", "refusals_day"}. Until then null.
            "traffic": None,
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


class BadCursor(ValueError):
    """A cursor this listing did not hand out."""


def parse_cursor(raw: str) -> tuple[int, str]:
    """Read ``<value>.<bin id>`` (ids hold no dot)."""
    value, dot, bin_id = raw.partition(".")
    if not dot or not value.isdigit() or not value.isascii() or not bin_id or len(value) > 19:
        raise BadCursor(raw)
    return int(value), bin_id


def page(
    limit: int = PAGE_DEFAULT, after: str | None = None, sort: str = "bytes"
) -> tuple[list[Row], str | None]:
    """List bins biggest first (ties by id); return the page and the cursor of the next."""
    column = SORTS[sort]
    limit = max(1, min(limit, PAGE_MAX))
    query = select(*_COLUMNS).order_by(column.desc(), Bin.id.desc()).limit(limit + 1)
    if after is not None:
        value, bin_id = parse_cursor(after)
        query = query.where(tuple_(column, Bin.id) < tuple_(value, bin_id))
    rows = [Row(*found) for found in db.session.execute(query).all()]
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = f"{getattr(rows[-1], column.key)}.{rows[-1].id}" if more else None
    return rows, cursor
