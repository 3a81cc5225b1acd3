"""A bin's captures in full (headers and body) after a sequence number, oldest first.

What a relay reads (``hookscope forward``): one query finds which requests fit the page (by count
and by body bytes, from the ``requests`` table alone), a second reads them with their payloads,
as plain columns rather than ORM objects, since a relay keeping up with a busy bin calls this
hundreds of times a second.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select

from app.domain.models import CapturedRequest, Payload
from app.domain.shapes import SummaryDict, isoformat, summary
from app.extensions import db

_SUMMARY = (
    CapturedRequest.bin_id,
    CapturedRequest.seq,
    CapturedRequest.method,
    CapturedRequest.path,
    CapturedRequest.query_string,
    CapturedRequest.content_type,
    CapturedRequest.body_size,
    CapturedRequest.remote_addr,
    CapturedRequest.received_at,
    CapturedRequest.status,
    CapturedRequest.rejected,
    CapturedRequest.pinned,
    CapturedRequest.delivery_id,
)


@dataclass(frozen=True)
class Full:
    """One capture as received: its summary, headers in order and exact body."""

    summary: SummaryDict
    headers: list[list[str]]
    body: bytes


@dataclass(frozen=True)
class FullPage:
    requests: list[Full]
    more: bool  # more requests after the last one were left for the next call


# Built once: making a statement costs more than running it, and a relay calls this often.
_SIZES = (
    select(CapturedRequest.seq, CapturedRequest.body_size)
    .where(CapturedRequest.bin_id == bindparam("bin_id"), CapturedRequest.seq > bindparam("after"))
    .order_by(CapturedRequest.seq)
    .limit(bindparam("limit"))
)
_ROWS = (
    select(*_SUMMARY, Payload.headers, Payload.body)
    .join(Payload, Payload.request_id == CapturedRequest.id)
    .where(
        CapturedRequest.bin_id == bindparam("bin_id"),
        CapturedRequest.seq > bindparam("after"),
        CapturedRequest.seq <= bindparam("last"),
    )
    .order_by(CapturedRequest.seq)
)


def after(bin_id: str, seq: int, limit: int, max_bytes: int) -> FullPage:
    """Return up to ``limit`` captures with a sequence number above ``seq``, oldest first.

    Bodies add up to ``max_bytes`` at most, except that the first capture always comes, however
    large, so a page is never empty while captures are waiting.
    """
    sizes = db.session.execute(_SIZES, {"bin_id": bin_id, "after": seq, "limit": limit + 1}).all()
    if not sizes:
        return FullPage([], False)
    last, total = sizes[0].seq, sizes[0].body_size
    taken = 1
    for row in sizes[1:limit]:
        if total + row.body_size > max_bytes:
            break
        last, total, taken = row.seq, total + row.body_size, taken + 1
    rows = db.session.execute(_ROWS, {"bin_id": bin_id, "after": seq, "last": last}).all()
    captures = [
        Full(
            summary(*row[:8], isoformat(row.received_at), *row[9:13], cut=False),
            row.headers,
            row.body,
        )
        for row in rows
    ]
    return FullPage(captures, taken < len(sizes))
