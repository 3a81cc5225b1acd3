"""A batch of captures on its way into the database, as typed rows; shared by both writers.

A batch is numbered per bin from the bin's row as the transaction took it (``Numbered``), each
capture is judged against that row's settings, and each gets its summary and the columns of its
request and payload rows. Rows read from the database are turned into these types here and in
the writers, nowhere else.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from app.domain import expiry, settings
from app.domain.capture import Snapshot
from app.domain.models import SummaryDict, summary
from app.domain.settings import BinSettings
from app.store.budget import Hold

# What a batch's numbering statement returns for each bin (after the bin's id, on PostgreSQL).
NUMBERED_COLUMNS = ("last_seq", "request_count", "expires_at", *settings.COLUMNS)


@dataclass(frozen=True)
class Recorded:
    """A stored capture: its summary, and the bin's settings as its transaction saw them."""

    summary: SummaryDict
    settings: BinSettings
    # Sequence numbers that retention dropped to make room.
    dropped: list[int] = field(default_factory=list)
    # Auto-forward tries stored with it, each (attempt id, target), leased to this process.
    forwards: list[tuple[int, str]] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return not self.summary["rejected"]


@dataclass
class Pending:
    """One capture waiting for its batch; ``done`` is set when its transaction has ended."""

    bin_id: str
    snap: Snapshot
    authorization: str | None
    headers_json: str
    done: Any = None  # the event the sender waits on (gevent or threading)
    hold: Hold | None = None  # the body's bytes in flight, released when the batch has ended
    result: Recorded | None = None
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class Numbered:
    """A bin's row as a batch's transaction numbered it: its counters after, and its settings."""

    last_seq: int
    request_count: int
    expires_at: datetime | None
    settings: BinSettings

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Numbered:
        """Read a row of ``NUMBERED_COLUMNS``."""
        last_seq, request_count, expires_at = row[:3]
        if isinstance(expires_at, str):  # SQLite keeps times as text
            expires_at = datetime.fromisoformat(expires_at)
        if expires_at is not None:
            expires_at = expires_at.replace(tzinfo=UTC)
        return cls(last_seq, request_count, expires_at, settings.from_row(row[3:]))

    def renewed_expiry(self, now: datetime) -> datetime | None:
        """The new expiry (naive UTC, as stored) when activity at ``now`` is due to renew it."""
        expires_after = self.settings.expires_after
        if not expiry.due_for_renewal(expires_after, self.expires_at, now):
            return None
        return naive_utc(now + timedelta(seconds=expires_after))


@dataclass(frozen=True, slots=True)
class BinBatch:
    """One bin's captures in a batch, and its row as numbered."""

    bin_id: str
    items: list[Pending]
    numbered: Numbered

    @property
    def excess(self) -> int:
        """How many requests retention must drop."""
        return self.numbered.request_count - self.numbered.settings.max_requests


@dataclass(frozen=True, slots=True)
class Stored:
    """A capture numbered and judged, about to be inserted."""

    item: Pending
    seq: int
    rejected: bool
    targets: tuple[str, ...] = ()  # where auto-forward sends it (accepted captures only)


_QUOTED = json.encoder.encode_basestring_ascii  # json.dumps's own quoting (C), ensure_ascii


def headers_json(headers: list[list[str]]) -> str:
    """``json.dumps(headers)`` for ``[name, value]`` pairs of text, the form stored in payloads.

    Written out pair by pair: json.dumps builds an encoder and walks the list generically, about
    three times as long for a request's few headers. Anything but pairs of text raises
    (snapshot.headers_of makes only those).
    """
    return (
        "[" + ", ".join([f"[{_QUOTED(name)}, {_QUOTED(value)}]" for name, value in headers]) + "]"
    )


def by_bin(batch: list[Pending]) -> dict[str, list[Pending]]:
    grouped: dict[str, list[Pending]] = {}
    for item in batch:
        grouped.setdefault(item.bin_id, []).append(item)
    return grouped


def judge(
    grouped: dict[str, list[Pending]], taken: dict[str, Numbered]
) -> tuple[list[BinBatch], list[Stored]]:
    """Number each bin's captures from its row as the transaction took it, and judge each one
    against that row's ingest protection. A bin missing from ``taken`` is gone: its captures
    answer 404 (their result stays None)."""
    bins, stored = [], []
    for bin_id, items in grouped.items():
        numbered = taken.get(bin_id)
        if numbered is None:
            continue
        first = numbered.last_seq - len(items) + 1
        targets = numbered.settings.targets
        for i, item in enumerate(items):
            allowed = numbered.settings.allows(item.authorization)
            stored.append(Stored(item, first + i, not allowed, targets if allowed else ()))
        bins.append(BinBatch(bin_id, items, numbered))
    return bins, stored


def row(stored: Stored, sqlite: bool = False) -> tuple[SummaryDict, tuple, tuple]:
    """A capture's summary, its request's columns after (id, bin_id, seq), and its payload's
    after request_id."""
    item, snap = stored.item, stored.item.snap
    # Formatted once for the summary and the row (models.isoformat, without its "Z").
    naive = naive_utc(snap.received_at)
    received_at = naive.isoformat(timespec="microseconds")
    status = 401 if stored.rejected else 200
    size = len(snap.body)
    request = (
        snap.method,
        snap.path,
        snap.query_string,
        snap.content_type,
        size,
        snap.remote_addr,
        # The form SQLAlchemy's DateTime column stores on SQLite.
        received_at.replace("T", " ") if sqlite else naive,
        status,
        stored.rejected,
    )
    payload = (snap.url, snap.http_version, item.headers_json, snap.body)
    described = summary(
        item.bin_id,
        stored.seq,
        snap.method,
        snap.path,
        snap.query_string,
        snap.content_type,
        size,
        snap.remote_addr,
        f"{received_at}Z",
        status,
        stored.rejected,
        False,
    )
    return described, request, payload


def settle(
    bins: list[BinBatch],
    stored: list[Stored],
    summaries: list[SummaryDict],
    dropped: dict[str, list[int]],
) -> None:
    """Set each stored capture's result; each bin's last capture carries what retention dropped."""
    numbered = {b.bin_id: b.numbered for b in bins}
    last = {id(b.items[-1]): b.bin_id for b in bins}
    for done, described in zip(stored, summaries, strict=True):
        bin_id = last.get(id(done.item))
        done.item.result = Recorded(
            described,
            numbered[done.item.bin_id].settings,
            dropped.get(bin_id, []) if bin_id else [],
        )


def forward_rows(stored: list[Stored], lease_seconds: float) -> list[tuple]:
    """One pending try per accepted capture and target: (stored, target, due, leased until).

    Due at once, and leased to the process storing it, which sends it straight after the
    commit; a lease that runs out (the process died) lets any process take it.
    """
    rows = []
    for done in stored:
        if not done.targets:
            continue
        due = naive_utc(done.item.snap.received_at)
        until = due + timedelta(seconds=lease_seconds)
        rows += [(done, target, due, until) for target in done.targets]
    return rows


def note_forwards(rows: list[tuple], attempt_ids: list[int]) -> None:
    """Tell each capture's result the tries stored for it (after ``settle``)."""
    for (done, target, _due, _until), attempt_id in zip(rows, attempt_ids, strict=True):
        if done.item.result is not None:
            done.item.result.forwards.append((attempt_id, target))


def columns(rows: list[tuple]) -> list[list]:
    """Rows as one list per column, for PostgreSQL's unnest()."""
    return [list(column) for column in zip(*rows, strict=True)]


def naive_utc(moment: datetime) -> datetime:
    """A UTC time without its zone, the form the DateTime columns hold."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def body_bytes(batch: list[Pending]) -> int:
    return sum(len(item.snap.body) for item in batch)
