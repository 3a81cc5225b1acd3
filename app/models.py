"""Tables and their serialisation: one shape for the API, the live event and the page."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, TypedDict

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import db


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


def isoformat(moment: datetime) -> str:
    """Format as ISO 8601 UTC with microseconds and a ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class BinDict(TypedDict):
    id: str
    name: str
    created_at: str
    last_seq: int


class SummaryDict(TypedDict):
    bin: str
    seq: int
    method: str
    path: str
    query_string: str
    content_type: str | None
    body_size: int
    remote_addr: str | None
    received_at: str


class Bin(db.Model):
    __tablename__ = "bins"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The last sequence number handed out; incremented inside the capture's write transaction.
    last_seq: Mapped[int] = mapped_column(Integer, default=0)

    def to_dict(self) -> BinDict:
        return {
            "id": self.id,
            "name": self.name,
            "created_at": isoformat(self.created_at),
            "last_seq": self.last_seq,
        }


class CapturedRequest(db.Model):
    """What the list shows. Headers and body live in ``Payload`` and load only on demand."""

    __tablename__ = "requests"
    __table_args__ = (Index("ix_requests_bin_seq", "bin_id", "seq", unique=True),)

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

    payload: Mapped[Payload] = relationship(lazy="raise", cascade="all, delete-orphan")

    def to_summary(self) -> SummaryDict:
        return {
            "bin": self.bin_id,
            "seq": self.seq,
            "method": self.method,
            "path": self.path,
            "query_string": self.query_string,
            "content_type": self.content_type,
            "body_size": self.body_size,
            "remote_addr": self.remote_addr,
            "received_at": isoformat(self.received_at),
        }


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
