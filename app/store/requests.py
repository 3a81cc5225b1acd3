"""A bin's captured requests in the database: pages of summaries, one request, and changes.

Listing reads only the ``requests`` table, keyset-paginated by ``(bin_id, seq)``; headers and
bodies live in ``payloads`` and are read when a request is opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import Row, Select, delete, func, select, update

from app.domain.bins import MAX_SEQ, PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX
from app.domain.models import AnswerRow, Bin, CapturedRequest, Payload
from app.domain.shapes import SUMMARY_TEXT_MAX, SummaryDict, isoformat, summary
from app.extensions import db
from app.store.bulk import Deletion
from app.store.engine import begin_write
from app.store.recorder import recorder_of


@dataclass(frozen=True)
class Page:
    requests: list[SummaryDict]
    next_before: int | None
    # Set when a search stopped on its work budget before filling the page (app/store/search/).
    searched_down_to: int | None = None


def page(
    bin_id: str,
    *,
    limit: int = PAGE_LIMIT_DEFAULT,
    before: int | None = None,
    method: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    delivery: str | None = None,
) -> Page:
    """List summaries newest first, keyset-paginated by sequence number, optionally filtered.

    ``delivery`` lists the captures a failure rehearsal counted under one delivery id: a
    provider's attempts at one delivery, together.
    """
    limit = max(1, min(limit, PAGE_LIMIT_MAX))
    query = _summaries().where(CapturedRequest.bin_id == bin_id)
    if before is not None:
        query = query.where(CapturedRequest.seq < before)
    if method:
        query = query.where(CapturedRequest.method == method.upper())
    if since is not None:
        query = query.where(CapturedRequest.received_at >= since)
    if until is not None:
        query = query.where(CapturedRequest.received_at < until)
    if delivery is not None:
        query = query.where(CapturedRequest.delivery_id == delivery)
    rows = db.session.execute(query.order_by(CapturedRequest.seq.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([_summary(r) for r in rows], rows[-1].seq if more else None)


def _summaries() -> Select:
    """The summary's columns, the path and query string read no longer than a summary shows
    them (one character more tells that they were cut): a page of 64 KiB paths stays small."""
    c = CapturedRequest
    return select(
        c.bin_id,
        c.seq,
        c.method,
        func.substr(c.path, 1, SUMMARY_TEXT_MAX + 1).label("path"),
        func.substr(c.query_string, 1, SUMMARY_TEXT_MAX + 1).label("query_string"),
        c.content_type,
        c.body_size,
        c.remote_addr,
        c.received_at,
        c.status,
        c.rejected,
        c.pinned,
        c.delivery_id,
    )


def _summary(row: Row) -> SummaryDict:
    return summary(*row[:8], isoformat(row.received_at), *row[9:])


def replay_start(bin_id: str, after: int, limit: int) -> tuple[int, bool]:
    """Where a catch-up after ``after`` starts, and whether older misses are left out: only the
    newest ``limit`` requests with ``seq > after`` are replayed. Reads seqs only (the index)."""
    seqs = db.session.scalars(
        select(CapturedRequest.seq)
        .where(CapturedRequest.bin_id == bin_id, CapturedRequest.seq > after)
        .order_by(CapturedRequest.seq.desc())
        .limit(limit + 1)
    ).all()
    if len(seqs) <= limit:
        return after, False
    return seqs[limit], True


def replay_page(bin_id: str, after: int, until: int, limit: int) -> tuple[list[SummaryDict], bool]:
    """Up to ``limit`` summaries with ``after < seq <= until``, oldest first; and whether more
    are left."""
    rows = db.session.execute(
        _summaries()
        .where(
            CapturedRequest.bin_id == bin_id,
            CapturedRequest.seq > after,
            CapturedRequest.seq <= until,
        )
        .order_by(CapturedRequest.seq)
        .limit(limit + 1)
    ).all()
    return [_summary(r) for r in rows[:limit]], len(rows) > limit


def find(bin_id: str, seq: int) -> CapturedRequest | None:
    """Return one captured request (summary columns only)."""
    if not 0 <= seq <= MAX_SEQ:
        return None
    return db.session.scalars(
        select(CapturedRequest).where(CapturedRequest.bin_id == bin_id, CapturedRequest.seq == seq)
    ).one_or_none()


def payload_of(captured: CapturedRequest) -> Payload:
    """Load the headers and body of a captured request."""
    return db.session.get_one(Payload, captured.id)


def answer_of(captured: CapturedRequest) -> AnswerRow | None:
    """Return what a capture was answered, when that was recorded (anything but the default)."""
    return db.session.get(AnswerRow, captured.id)


def release() -> None:
    """End this request's read transaction and hand back its connection (before a long wait)."""
    db.session.rollback()
    db.session.close()


def delete_request(bin_id: str, seq: int) -> bool:
    """Delete one request; tell whether it existed."""
    if not 0 <= seq <= MAX_SEQ:
        return False
    begin_write()
    size = db.session.execute(
        delete(CapturedRequest)
        .where(CapturedRequest.bin_id == bin_id, CapturedRequest.seq == seq)
        .returning(CapturedRequest.stored_bytes)
    ).scalar_one_or_none()
    if size is not None:
        db.session.execute(
            update(Bin)
            .where(Bin.id == bin_id)
            .values(request_count=Bin.request_count - 1, stored_bytes=Bin.stored_bytes - size)
        )
    db.session.commit()
    return size is not None


def clear(bin_id: str, *, include_pinned: bool = False) -> int:
    """Delete a bin's requests (pinned ones stay unless asked); return how many went.

    What the bin held when asked goes; captures arriving meanwhile stay. In bounded batches
    in the writer's order, so captures to every bin go on meanwhile (app/store/bulk.py).
    """
    through = db.session.scalar(select(Bin.last_seq).where(Bin.id == bin_id))
    db.session.commit()  # the batches are written through the writer's connections
    if through is None:
        return 0
    deletion = Deletion(bin_id, through=through, include_pinned=include_pinned)
    return recorder_of(current_app).bulk(deletion)


def set_pinned(bin_id: str, seq: int, pinned: bool) -> SummaryDict | None:
    """Pin or unpin a request; return its summary, or None when there is no such request."""
    begin_write()
    captured = find(bin_id, seq)
    if captured is None:
        db.session.rollback()
        return None
    captured.pinned = pinned
    db.session.commit()
    return captured.to_summary()
