"""Raw SQL over ``requests`` that both engines' readers share: columns, filters, rows as models."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select, text

from app.domain.models import CapturedRequest, UTCDateTime
from app.extensions import db

REQUESTS = CapturedRequest.__table__
COLUMNS = ", ".join(f"requests.{c.name}" for c in REQUESTS.c)


@dataclass(frozen=True)
class Found:
    """Matches newest first; ``searched_down_to`` is set when the reader stopped on its budget
    before the page was full: every request from that seq up has been searched."""

    rows: list[CapturedRequest]
    searched_down_to: int | None = None


def read(sql: str, params: dict[str, object]) -> list[CapturedRequest]:
    """Run a SELECT of ``COLUMNS`` and return the rows as models."""
    statement = text(sql).bindparams(*typed(params)).columns(*REQUESTS.c)
    return list(db.session.scalars(select(CapturedRequest).from_statement(statement)))


def filters(method, since, until, params: dict[str, object]) -> list[str]:
    """The list's other filters, as SQL over ``requests`` with their values put in ``params``."""
    conditions = []
    if method:
        conditions.append("requests.method = :method")
        params["method"] = method
    if since is not None:
        conditions.append("requests.received_at >= :since")
        params["since"] = since
    if until is not None:
        conditions.append("requests.received_at < :until")
        params["until"] = until
    return conditions


def typed(params: dict[str, object]) -> list:
    """Bind parameters, times through the column's type (naive UTC, as stored)."""
    return [
        bindparam(name, value, type_=UTCDateTime() if isinstance(value, datetime) else None)
        for name, value in params.items()
    ]
