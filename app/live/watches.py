"""What each live connection watches, how far its catch-up got, and how often it says ``watch``.

One entry per Socket.IO connection in this process, made at its first ``watch`` and dropped when
it disconnects. A connection watches at most HOOKSCOPE_WATCHES_PER_SOCKET bins and may say
``watch`` at HOOKSCOPE_WATCH_RATE (``20/minute``): each watch can replay a page of summaries, and
thirty of them from one socket were how a client that never read made the server buffer hundreds
of MiB. A catch-up is replayed a page at a time (``Replay``); the next page is sent only when the
client asks for it, having had the last. Pure bookkeeping: no Socket.IO, no SQL.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import limits


@dataclass
class Replay:
    """A catch-up in progress: every capture up to ``through`` has been sent; the rest, up to
    ``until`` (the bin's last seq when it was watched; newer ones come live), is still to go."""

    through: int
    until: int
    busy: bool = False  # a page is being sent: one at a time


@dataclass
class Window:
    """A fixed-window count of calls: ``amount`` per ``seconds``."""

    amount: int
    seconds: int
    started: float = float("-inf")
    count: int = 0

    def take(self, now: float) -> bool:
        if now - self.started >= self.seconds:
            self.started, self.count = now, 0
        if self.count >= self.amount:
            return False
        self.count += 1
        return True


@dataclass
class Connection:
    """One connection's bins (each with its catch-up, if one is going on) and pace."""

    bins: dict[str, Replay | None] = field(default_factory=dict)
    pace: list[Window] = field(default_factory=list)


def windows(rate: str) -> list[Window]:
    """Windows for a rate like ``20/minute`` or ``5/second;20/minute`` ("" is no limit)."""
    return (
        [Window(item.amount, item.get_expiry()) for item in limits.parse_many(rate)] if rate else []
    )


class Watches:
    """Every connection's entry in this process, by Socket.IO session id."""

    def __init__(self) -> None:
        self.by_sid: dict[str, Connection] = {}

    def of(self, sid: str, rate: str) -> Connection:
        """The connection's entry, made on first use with its pace set to ``rate``."""
        found = self.by_sid.get(sid)
        if found is None:
            found = self.by_sid[sid] = Connection(pace=windows(rate))
        return found

    def forget(self, sid: str) -> None:
        self.by_sid.pop(sid, None)


def may_watch(conn: Connection, now: float | None = None) -> bool:
    """Count a ``watch``; False when it comes faster than the connection's pace allows."""
    now = time.monotonic() if now is None else now
    return all([window.take(now) for window in conn.pace])  # every window counts the call


def has_room(conn: Connection, bin_id: str, most: int) -> bool:
    """Tell whether the connection may watch ``bin_id``: it does already, or has room for one."""
    return bin_id in conn.bins or len(conn.bins) < most
