"""Tables and their serialisation; the shapes they serialise to are in app/domain/shapes.py."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.domain.budgets import effective_max_bytes
from app.domain.shapes import BinDict, SummaryDict, body_value, isoformat, summary
from app.extensions import db


class UTCDateTime(TypeDecorator):
    """Store naive UTC, hand back aware UTC, on every database (SQLite keeps no offset)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use datetime.now(UTC)")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Bin(db.Model):
    __tablename__ = "bins"
    # The admin view's order (biggest first, keyset by id) and its totals, read from the index
    # alone: request_count rides along so that summing it needs no table scan.
    __table_args__ = (Index("ix_bins_stored_bytes", "stored_bytes", "id", "request_count"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # SHA-256 of the read key; NULL only for a fixed bin its operator declared public.
    read_key_hash: Mapped[str | None] = mapped_column(String(64))
    # The last sequence number handed out, and how many requests are stored: both change inside
    # the capture's write transaction, which holds the bin's row.
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    request_count: Mapped[int] = mapped_column(Integer, default=0)
    max_requests: Mapped[int] = mapped_column(Integer)
    # Inactivity period in seconds (NULL: never expires) and the moment it runs out.
    expires_after: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # "basic" or "bearer" when captures must authenticate, with the SHA-256 of the expected
    # Authorization header; None lets anyone send.
    ingest_auth: Mapped[str | None] = mapped_column(String(16))
    ingest_secret_hash: Mapped[str | None] = mapped_column(String(64))
    fixed: Mapped[bool] = mapped_column(default=False)
    # Raised by every change to what the capture path reads (app/domain/settings.py).
    settings_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The bin's own byte budget (NULL: the operator's HOOKSCOPE_BIN_MAX_BYTES, which also caps
    # it), and the bytes its requests hold as stored (app/domain/budgets.py), kept by the same
    # transactions that change its requests.
    max_bytes: Mapped[int | None] = mapped_column(BigInteger)
    stored_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    last_capture_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Who created it, as an authenticating proxy named them (HOOKSCOPE_TRUSTED_USER_HEADER).
    created_by: Mapped[str | None] = mapped_column(String(200))
    # Auto-forward targets, a JSON list of URLs (NULL: none); see app/domain/forwarding.py.
    forward_to: Mapped[str | None] = mapped_column(Text)
    # What captures are answered (app/ingest/respond/), as canonical JSON text; NULL: "200 ok".
    response_settings: Mapped[str | None] = mapped_column(Text)

    @property
    def public(self) -> bool:
        """Tell whether anyone may read this bin (and so nobody may change it)."""
        return self.read_key_hash is None

    def to_dict(self, bin_max_bytes: int | None = None) -> BinDict:
        """The bin as its readers see it; ``bin_max_bytes`` is the operator's ceiling."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "created_at": isoformat(self.created_at),
            "last_seq": self.last_seq,
            "request_count": self.request_count,
            "max_requests": self.max_requests,
            "max_bytes": effective_max_bytes(self.max_bytes, bin_max_bytes),
            "stored_bytes": self.stored_bytes,
            "expires_at": isoformat(self.expires_at) if self.expires_at else None,
            "expires_after": self.expires_after,
            "ingest_auth": self.ingest_auth,
            "fixed": self.fixed,
            "public": self.public,
            "forward_to": json.loads(self.forward_to) if self.forward_to else [],
        }


class CapturedRequest(db.Model):
    """What the list shows. Headers and body live in ``Payload`` and load only on demand."""

    __tablename__ = "requests"
    __table_args__ = (
        Index("ix_requests_bin_seq", "bin_id", "seq", unique=True),
        # Partial: only captures a failure rehearsal counted under a delivery id are in it.
        Index(
            "ix_requests_bin_delivery",
            "bin_id",
            "delivery_id",
            "seq",
            sqlite_where=text("delivery_id IS NOT NULL"),
            postgresql_where=text("delivery_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bin_id: Mapped[str] = mapped_column(ForeignKey("bins.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(Text)
    path: Mapped[str] = mapped_column(Text)
    query_string: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str | None] = mapped_column(Text)
    body_size: Mapped[int] = mapped_column(Integer)
    remote_addr: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # What the sender was answered, and whether the bin's ingest protection turned it away.
    status: Mapped[int] = mapped_column(Integer, default=200)
    rejected: Mapped[bool] = mapped_column(default=False)
    # Pinned requests survive retention.
    pinned: Mapped[bool] = mapped_column(default=False)
    # The delivery a failure rehearsal counted it under (its per_header value), so that a
    # provider's retries of one delivery can be listed together.
    delivery_id: Mapped[str | None] = mapped_column(Text)
    # What the request holds as stored (body, header list, URL: app/domain/budgets.py); its bin's
    # stored_bytes is the sum of these.
    stored_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    payload: Mapped[Payload] = relationship(lazy="raise", cascade="all, delete-orphan")

    def to_summary(self, cut: bool = True) -> SummaryDict:
        """The list's shape (``cut``: long paths and query strings shortened, and flagged)."""
        return summary(
            self.bin_id,
            self.seq,
            self.method,
            self.path,
            self.query_string,
            self.content_type,
            self.body_size,
            self.remote_addr,
            isoformat(self.received_at),
            self.status,
            self.rejected,
            self.pinned,
            self.delivery_id,
            cut,
        )


class Payload(db.Model):
    """Everything about a request that only its detail view needs."""

    __tablename__ = "payloads"

    request_id: Mapped[int] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True
    )
    url: Mapped[str] = mapped_column(Text)
    http_version: Mapped[str] = mapped_column(String(16))
    headers: Mapped[list[list[str]]] = mapped_column(JSON)
    body: Mapped[bytes] = mapped_column(LargeBinary)

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "http_version": self.http_version,
            "headers": self.headers,
            "body_sha256": hashlib.sha256(self.body).hexdigest(),
        }


class Attempt(db.Model):
    """One time Hookscope sent a captured request somewhere: a replay, or an auto-forward try.

    A forward starts ``pending`` (stored with its capture, due at once); each try ends ``done``
    with its outcome, and a failure that is retried adds the next try as a new pending row.
    """

    __tablename__ = "attempts"
    __table_args__ = (
        Index("ix_attempts_request", "request_id", "id"),
        Index("ix_attempts_due", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    bin_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # "replay" or "forward"
    target: Mapped[str] = mapped_column(Text)  # the URL (a forward's: the bin's target)
    method: Mapped[str] = mapped_column(Text)
    try_number: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(16))  # "pending" or "done"
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A process that took a pending row owns it until then (app/outbound/forwarder.py).
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    url: Mapped[str | None] = mapped_column(Text)  # where it went (the last redirect's URL)
    address: Mapped[str | None] = mapped_column(Text)
    status: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text, default="")
    response_headers: Mapped[list[list[str]] | None] = mapped_column(JSON)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    response_truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    timings: Mapped[dict[str, float] | None] = mapped_column(JSON)
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the next try is due then
    edited: Mapped[bool] = mapped_column(Boolean, default=False)
    resigned: Mapped[str | None] = mapped_column(String(32))  # the scheme, never the secret

    def to_dict(self) -> dict[str, Any]:
        """The attempt as the API, the page and a replay's answer show it."""
        response = None
        if self.status is not None:
            response = {
                "status": self.status,
                "reason": self.reason,
                "headers": self.response_headers or [],
                "body": body_value(self.response_body or b"", self.response_truncated),
            }
        return {
            "id": self.id,
            "kind": self.kind,
            "target": self.target,
            "method": self.method,
            "try": self.try_number,
            "state": self.state,
            "due_at": _iso(self.due_at) if self.state == "pending" else None,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "url": self.url,
            "address": self.address,
            "response": response,
            "error": self.error,
            "message": self.message,
            "timings": self.timings,
            "retry_at": _iso(self.retry_at),
            "edited": self.edited,
            "resigned": self.resigned,
        }


def _iso(moment: datetime | None) -> str | None:
    return isoformat(moment) if moment is not None else None


class BinUsage(db.Model):
    """What a bin took and refused, per period of ``usage.PERIOD_SECONDS`` (app/store/usage.py).

    ``reason`` is "captured" for what was stored, else why the capture was refused
    (app/domain/refusals.py); ``bytes`` counts stored bodies.
    """

    __tablename__ = "bin_usage"
    __table_args__ = (Index("ix_bin_usage_period", "period"),)

    bin_id: Mapped[str] = mapped_column(ForeignKey("bins.id", ondelete="CASCADE"), primary_key=True)
    # Unix time (seconds, UTC) at the start of the period.
    period: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    reason: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)


class AnswerRow(db.Model):
    """What a capture was answered, when it was anything but the default ``200 ok``.

    Written in the capture's own transaction, or just after it (app/store/answers.py);
    ``record`` is the JSON of app/ingest/respond's ``Answer.to_record()`` (the gate's
    Content-Length and X-Hookscope-Seq are added back when shown), ``sent_at`` when the answer
    went out (NULL while a delayed answer waits).
    """

    __tablename__ = "answers"

    request_id: Mapped[int] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True
    )
    record: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
