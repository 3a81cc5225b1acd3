"""Domain operations on bins and their captured requests. No HTTP here."""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update

from . import storage
from .extensions import db
from .models import Bin, CapturedRequest, Payload, SummaryDict
from .snapshot import Snapshot

# Generated ids are 26 characters of base32 (128 random bits). Fixed bins declared by an operator
# may use other ids, so lookups accept any URL-safe token up to 64 characters.
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
PAGE_LIMIT_DEFAULT = 50
PAGE_LIMIT_MAX = 200


def new_id() -> str:
    """Return an unguessable bin id: 128 bits from ``secrets``, lower-case base32."""
    return base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=").lower()


def create(name: str = "") -> Bin:
    """Create and store a new empty bin."""
    bin_ = Bin(id=new_id(), name=name, created_at=datetime.now(UTC), last_seq=0)
    storage.begin_write()
    db.session.add(bin_)
    db.session.commit()
    return bin_


def get(bin_id: str) -> Bin | None:
    """Return the bin with this id, or None."""
    if not ID_PATTERN.fullmatch(bin_id):
        return None
    return db.session.get(Bin, bin_id)


def record(bin_id: str, snap: Snapshot) -> SummaryDict | None:
    """Store one captured request under the bin's next sequence number and commit.

    Returns the stored request's summary, or None when the bin no longer exists.
    """
    storage.begin_write()
    seq = db.session.execute(
        update(Bin)
        .where(Bin.id == bin_id)
        .values(last_seq=Bin.last_seq + 1)
        .returning(Bin.last_seq)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if seq is None:
        db.session.rollback()
        return None
    captured = CapturedRequest(
        bin_id=bin_id,
        seq=seq,
        method=snap.method,
        path=snap.path,
        query_string=snap.query_string,
        content_type=snap.content_type,
        body_size=len(snap.body),
        remote_addr=snap.remote_addr,
        received_at=snap.received_at,
    )
    captured.payload = Payload(
        url=snap.url, http_version=snap.http_version, headers=snap.headers, body=snap.body
    )
    db.session.add(captured)
    db.session.commit()
    return captured.to_summary()


@dataclass(frozen=True)
class Page:
    requests: list[SummaryDict]
    next_before: int | None


def page(bin_id: str, *, limit: int = PAGE_LIMIT_DEFAULT, before: int | None = None) -> Page:
    """List summaries newest first, keyset-paginated by sequence number."""
    limit = max(1, min(limit, PAGE_LIMIT_MAX))
    query = select(CapturedRequest).where(CapturedRequest.bin_id == bin_id)
    if before is not None:
        query = query.where(CapturedRequest.seq < before)
    rows = db.session.scalars(query.order_by(CapturedRequest.seq.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([r.to_summary() for r in rows], rows[-1].seq if more else None)


def since(bin_id: str, after: int, limit: int) -> list[SummaryDict]:
    """Return up to ``limit`` of the newest summaries with ``seq > after``, oldest first."""
    rows = db.session.scalars(
        select(CapturedRequest)
        .where(CapturedRequest.bin_id == bin_id, CapturedRequest.seq > after)
        .order_by(CapturedRequest.seq.desc())
        .limit(limit)
    ).all()
    return [r.to_summary() for r in reversed(rows)]


def find(bin_id: str, seq: int) -> CapturedRequest | None:
    """Return one captured request (summary columns only)."""
    return db.session.scalars(
        select(CapturedRequest).where(CapturedRequest.bin_id == bin_id, CapturedRequest.seq == seq)
    ).one_or_none()


def payload_of(captured: CapturedRequest) -> Payload:
    """Load the headers and body of a captured request."""
    return db.session.get_one(Payload, captured.id)
