"""A batch of captures on its way into the database, as typed rows; shared by both writers.

A batch is numbered per bin from the bin's row as the transaction took it (``Numbered``), each
capture is judged against that row's settings and, by the answerer the capture gate gives the
writer, answered (``Decided``: chosen from those very settings, with the capture's seq), and
each gets its summary and the columns of its request, payload and answer rows
(app/store/batch_rows.py). Rows read from the database are turned into these types here and in
the writers, nowhere else.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from app.domain import budgets, expiry, settings
from app.domain.capture import Snapshot
from app.domain.settings import BinSettings
from app.domain.shapes import SummaryDict
from app.store.inflight import Hold

log = logging.getLogger("hookscope.recording")

# What a batch's numbering statement returns for each bin (after the bin's id, on PostgreSQL).
NUMBERED_COLUMNS = ("last_seq", "request_count", "stored_bytes", "expires_at", *settings.COLUMNS)


@dataclass(frozen=True, slots=True)
class Decided:
    """What a capture is answered, decided in its own transaction.

    ``record`` is the JSON text stored in ``answers`` (None: the default answer, not stored);
    ``sent_at`` is when it goes out (None: after a delay, noted once it went out); ``answer``
    is the answer itself, for the gate to send (app/ingest/respond's Answer).
    """

    status: int
    delivery_id: str | None
    record: str | None
    sent_at: datetime | None
    answer: Any


# The gate's answerer: (settings, seq, snapshot, allowed) -> Decided, or None when the answer
# can only be made after the commit (a count to keep: app/ingest/answering.py).
Answerer = Callable[[BinSettings, int, Snapshot, bool], "Decided | None"]


@dataclass(frozen=True)
class Recorded:
    """A stored capture: its summary, the bin's settings as its transaction saw them, and its
    answer when the transaction decided it."""

    summary: SummaryDict
    settings: BinSettings
    # Sequence numbers that retention dropped to make room, and the bytes they held.
    dropped: list[int] = field(default_factory=list)
    freed_bytes: int = 0
    # The bin's stored bytes once its transaction was done.
    bin_bytes: int = 0
    # Auto-forward tries stored with it, each (attempt id, target), leased to this process.
    forwards: list[tuple[int, str]] = field(default_factory=list)
    decided: Decided | None = None

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
    # What the capture holds as stored (app/domain/budgets.py).
    size: int = field(init=False)

    def __post_init__(self) -> None:
        self.size = budgets.stored_size(len(self.snap.body), self.headers_json, self.snap.url)


@dataclass(frozen=True, slots=True)
class Numbered:
    """A bin's row as a batch's transaction numbered it: its counters after, and its settings."""

    last_seq: int
    request_count: int
    stored_bytes: int
    expires_at: datetime | None
    settings: BinSettings

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Numbered:
        """Read a row of ``NUMBERED_COLUMNS``."""
        last_seq, request_count, stored_bytes, expires_at = row[:4]
        if isinstance(expires_at, str):  # SQLite keeps times as text
            expires_at = datetime.fromisoformat(expires_at)
        if expires_at is not None:
            expires_at = expires_at.replace(tzinfo=UTC)
        return cls(last_seq, request_count, stored_bytes, expires_at, settings.from_row(row[4:]))

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
    # The byte budget in effect (the bin's own, capped by HOOKSCOPE_BIN_MAX_BYTES); None: none.
    max_bytes: int | None = None

    @property
    def excess(self) -> int:
        """How many requests retention must drop."""
        return self.numbered.request_count - self.numbered.settings.max_requests

    @property
    def bytes_excess(self) -> int:
        """How many bytes retention must free (at least)."""
        if self.max_bytes is None:
            return 0
        return self.numbered.stored_bytes - self.max_bytes


@dataclass(frozen=True, slots=True)
class Stored:
    """A capture numbered and judged, about to be inserted."""

    item: Pending
    seq: int
    rejected: bool
    targets: tuple[str, ...] = ()  # where auto-forward sends it (accepted captures only)
    decided: Decided | None = None


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


def numbering(grouped: dict[str, list[Pending]], sqlite: bool = False) -> list[tuple]:
    """Per bin: (id, captures, bytes they hold, the last one's time as stored), for the
    statement that numbers a batch."""
    out = []
    for bin_id, items in grouped.items():
        last = naive_utc(items[-1].snap.received_at)
        at = last.isoformat(" ", "microseconds") if sqlite else last
        out.append((bin_id, len(items), sum(item.size for item in items), at))
    return out


def judge(
    grouped: dict[str, list[Pending]],
    taken: dict[str, Numbered],
    answerer: Answerer | None = None,
    bin_max_bytes: int | None = None,
) -> tuple[list[BinBatch], list[Stored]]:
    """Number each bin's captures from its row as the transaction took it, judge each one
    against that row's ingest protection, and answer it from that row's settings. A bin missing
    from ``taken`` is gone: its captures answer 404 (their result stays None).
    ``bin_max_bytes`` is the operator's ceiling on each bin's byte budget."""
    bins, stored = [], []
    for bin_id, items in grouped.items():
        numbered = taken.get(bin_id)
        if numbered is None:
            continue
        first = numbered.last_seq - len(items) + 1
        targets = numbered.settings.targets
        for i, item in enumerate(items):
            allowed = numbered.settings.allows(item.authorization)
            decided = None
            if answerer is not None:
                try:
                    decided = answerer(numbered.settings, first + i, item.snap, allowed)
                except Exception:  # a bug here must never cost the capture: answered after commit
                    log.exception("answering a capture in its transaction failed")
            forward = targets if allowed else ()
            stored.append(Stored(item, first + i, not allowed, forward, decided))
        max_bytes = budgets.effective_max_bytes(numbered.settings.max_bytes, bin_max_bytes)
        bins.append(BinBatch(bin_id, items, numbered, max_bytes))
    return bins, stored


def settle(
    bins: list[BinBatch],
    stored: list[Stored],
    summaries: list[SummaryDict],
    dropped: dict[str, list[int]],
    freed: dict[str, int],
) -> None:
    """Set each stored capture's result; each bin's last capture carries what retention dropped
    and the bytes that freed."""
    numbered = {b.bin_id: b.numbered for b in bins}
    last = {id(b.items[-1]): b.bin_id for b in bins}
    for done, described in zip(stored, summaries, strict=True):
        bin_id = last.get(id(done.item))
        row = numbered[done.item.bin_id]
        done.item.result = Recorded(
            described,
            row.settings,
            dropped.get(bin_id, []) if bin_id else [],
            freed.get(bin_id, 0) if bin_id else 0,
            row.stored_bytes - freed.get(done.item.bin_id, 0),
            decided=done.decided,
        )


def naive_utc(moment: datetime) -> datetime:
    """A UTC time without its zone, the form the DateTime columns hold."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def body_bytes(batch: list[Pending]) -> int:
    return sum(len(item.snap.body) for item in batch)
