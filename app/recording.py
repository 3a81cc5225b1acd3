"""The capture's write path: look a bin up, store a request, keep the bin within its limits.

This runs for every request a provider sends, so it uses SQLAlchemy Core statements built once, on
a connection of its own, with no ORM unit of work: profiling showed the ORM's flush and identity
map taking most of a capture's time. One transaction per capture takes the bin's next sequence
number, inserts the request and its payload, applies retention and renews expiry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import Connection

from . import keys, storage
from .extensions import db
from .models import Bin, CapturedRequest, Payload, SummaryDict, isoformat
from .snapshot import Snapshot

BINS, REQUESTS, PAYLOADS = Bin.__table__, CapturedRequest.__table__, Payload.__table__
# Generated ids are 26 characters of base32 (128 random bits). Fixed bins declared by an operator
# may use other ids, so lookups accept any URL-safe token up to 64 characters.
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Expiry is renewed by activity, but written at most this often per bin (or each 1% of the period).
RENEW_EVERY = timedelta(hours=1)

_LOOKUP = select(BINS.c.ingest_auth, BINS.c.ingest_secret_hash).where(
    BINS.c.id == bindparam("bin_id")
)
_NEXT_SEQ = (
    update(BINS)
    .where(BINS.c.id == bindparam("bin_id"))
    .values(last_seq=BINS.c.last_seq + 1, request_count=BINS.c.request_count + 1)
    .returning(
        BINS.c.last_seq,
        BINS.c.request_count,
        BINS.c.max_requests,
        BINS.c.expires_after,
        BINS.c.expires_at,
    )
)
_INSERT_REQUEST = insert(REQUESTS).returning(REQUESTS.c.id)
_INSERT_PAYLOAD = insert(PAYLOADS)


@dataclass(frozen=True)
class Target:
    """What the capture needs to know about a bin before storing into it."""

    ingest_auth: str | None
    ingest_secret_hash: str | None

    def allows(self, authorization: str | None) -> bool:
        """Tell whether a capture passes the bin's ingest protection."""
        if self.ingest_auth is None or self.ingest_secret_hash is None:
            return True
        presented = keys.normalised_authorization(authorization or "")
        return keys.same(presented, self.ingest_secret_hash)


@dataclass(frozen=True)
class Recorded:
    summary: SummaryDict
    # Sequence numbers that retention dropped to make room.
    dropped: list[int] = field(default_factory=list)


def lookup(bin_id: str) -> Target | None:
    """Find the bin a capture is for, without holding a transaction open afterwards."""
    if not ID_PATTERN.fullmatch(bin_id):
        return None  # no bin can have this id: spare the database
    with db.engine.connect() as conn:
        row = conn.execute(_LOOKUP, {"bin_id": bin_id}).one_or_none()
    return None if row is None else Target(*row)


def record(
    bin_id: str, snap: Snapshot, *, status: int = 200, rejected: bool = False
) -> Recorded | None:
    """Store one captured request under the bin's next sequence number and commit.

    Retention drops the oldest unpinned requests beyond the bin's limit in the same transaction,
    never the one just stored. Returns a ``Recorded``, or None when the bin no longer exists.
    """
    with db.engine.connect() as conn:
        conn = conn.execution_options(**storage.WRITE)
        with conn.begin():
            row = conn.execute(_NEXT_SEQ, {"bin_id": bin_id}).one_or_none()
            if row is None:
                return None
            seq, count, limit, expires_after, expires_at = row
            summary: SummaryDict = {
                "bin": bin_id,
                "seq": seq,
                "method": snap.method,
                "path": snap.path,
                "query_string": snap.query_string,
                "content_type": snap.content_type,
                "body_size": len(snap.body),
                "remote_addr": snap.remote_addr,
                "received_at": isoformat(snap.received_at),
                "status": status,
                "rejected": rejected,
                "pinned": False,
            }
            columns = {k: v for k, v in summary.items() if k != "bin"}
            request_id = conn.execute(
                _INSERT_REQUEST, {**columns, "bin_id": bin_id, "received_at": snap.received_at}
            ).scalar_one()
            conn.execute(
                _INSERT_PAYLOAD,
                {
                    "request_id": request_id,
                    "url": snap.url,
                    "http_version": snap.http_version,
                    "headers": snap.headers,
                    "body": snap.body,
                },
            )
            dropped = drop_oldest(conn, bin_id, count - limit, keep=seq) if count > limit else []
            renew(conn, bin_id, expires_after, expires_at, snap.received_at)
    return Recorded(summary, dropped)


def drop_oldest(conn: Connection, bin_id: str, excess: int, keep: int) -> list[int]:
    """Delete the ``excess`` oldest unpinned requests other than ``keep``; return their seqs."""
    victims = conn.execute(
        select(REQUESTS.c.id, REQUESTS.c.seq)
        .where(
            REQUESTS.c.bin_id == bin_id,
            REQUESTS.c.pinned.is_(False),
            REQUESTS.c.seq != keep,
        )
        .order_by(REQUESTS.c.seq)
        .limit(excess)
    ).all()
    if victims:
        conn.execute(delete(REQUESTS).where(REQUESTS.c.id.in_([v.id for v in victims])))
        conn.execute(
            update(BINS)
            .where(BINS.c.id == bin_id)
            .values(request_count=BINS.c.request_count - len(victims))
        )
    return [v.seq for v in victims]


def due_for_renewal(expires_after: int | None, expires_at: datetime | None, now: datetime) -> bool:
    """Tell whether activity at ``now`` should push the expiry out (it moved enough to matter)."""
    if expires_after is None or expires_at is None:
        return False
    slack = min(RENEW_EVERY, timedelta(seconds=expires_after / 100))
    return expires_at < now + timedelta(seconds=expires_after) - slack


def renew(
    conn: Connection,
    bin_id: str,
    expires_after: int | None,
    expires_at: datetime | None,
    now: datetime,
) -> None:
    """Push the bin's expiry out by its period when it is due."""
    if due_for_renewal(expires_after, expires_at, now):
        conn.execute(
            update(BINS)
            .where(BINS.c.id == bin_id)
            .values(expires_at=now + timedelta(seconds=expires_after))
        )
