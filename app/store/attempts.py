"""Attempts in the database: a replay's record, and a request's attempts for its detail view.

Auto-forward's pending rows are written with their capture (app/store/sqlite.py,
app/store/postgres.py) and worked by app/store/forwards.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from app.domain.forwarding import MAX_REPLAYS_KEPT
from app.domain.models import Attempt
from app.extensions import db
from app.store.engine import begin_write


def record_replay(
    request_id: int,
    bin_id: str,
    *,
    target: str,
    method: str,
    started_at: datetime,
    finished_at: datetime,
    outcome: dict[str, Any],
    edited: bool,
    resigned: str | None,
) -> Attempt | None:
    """Keep a finished replay; drop the request's oldest replays past the cap.

    None when the request was deleted meanwhile (the replay went out; nothing can hold it).
    """
    begin_write()
    attempt = Attempt(
        request_id=request_id,
        bin_id=bin_id,
        kind="replay",
        target=target,
        method=method,
        try_number=1,
        state="done",
        started_at=started_at,
        finished_at=finished_at,
        edited=edited,
        resigned=resigned,
        **outcome,
    )
    db.session.add(attempt)
    try:
        db.session.flush()
    except IntegrityError:  # the request is gone: nothing refers to it any more
        db.session.rollback()
        return None
    kept = (
        select(Attempt.id)
        .where(Attempt.request_id == request_id, Attempt.kind == "replay")
        .order_by(Attempt.id.desc())
        .limit(MAX_REPLAYS_KEPT)
    )
    db.session.execute(
        delete(Attempt).where(
            Attempt.request_id == request_id,
            Attempt.kind == "replay",
            Attempt.id.not_in(kept.scalar_subquery()),
        )
    )
    db.session.commit()
    return attempt


def of_request(request_id: int) -> list[Attempt]:
    """A request's attempts, newest first."""
    return list(
        db.session.scalars(
            select(Attempt).where(Attempt.request_id == request_id).order_by(Attempt.id.desc())
        )
    )
