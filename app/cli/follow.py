"""Read a bin's captures in sequence order after a position, for as long as the command runs.

The next capture comes from what the live stream brought in full (app/cli/recent.py) when it is
there, else by seq from the API (app/cli/feed.py): at the start (catching up), after a
reconnection, every few seconds while quiet, and for any seq the stream did not bring (a body
too large for it, an event lost, a server that does not send captures in full). Nothing depends
on an event arriving. Sequence numbers that are skipped were deleted or dropped by the bin's
retention before they could be read, and are reported as missing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from app.cli.feed import Capture, Feed, Unreachable
from app.cli.recent import Recent
from app.cli.stream import Signal

# Read the API this often even when the stream is quiet (a stream that lost events).
POLL_SECONDS = 5.0
# Waits after a failed read: doubling from the first, at most the last; a reconnected stream
# cuts the wait short.
RETRY_FIRST, RETRY_MAX = 0.25, 5.0
# How long a reader waits for the stream to bring the next capture once a later one is known:
# events are handled on threads of their own and may come a moment out of order.
REORDER_WAIT = 0.05

Handle = Callable[[Capture], bool]  # False: stopped before the capture was dealt with
Missing = Callable[[int, int], None]  # (first, last) sequence numbers that are gone
Idle = Callable[[int], None]  # caught up to this seq


class Follower:
    """One reader of one bin, with its own connection and position."""

    def __init__(
        self,
        feed: Feed,
        signal: Signal,
        stop: threading.Event,
        note: Callable[[str, str], None],
        after: int,
        recent: Recent | None = None,
    ) -> None:
        self.feed, self.signal, self.stop, self.note = feed, signal, stop, note
        self.after = after
        self.recent = recent
        self._retry, self._failing = RETRY_FIRST, False

    def run(self, handle: Handle, missing: Missing, idle: Idle) -> None:
        """Hand every capture after the position to ``handle``, in order, until stopped.

        Raises feed.Refused when the server refuses for good (no such bin, wrong key).
        """
        read_api = True  # catch up from the API first
        while not self.stop.is_set():
            wakes = self.signal.wakes
            if not read_api and self.signal.latest > self.after:
                streamed = self._streamed(self.after + 1)
                if streamed is None:
                    read_api = True
                    continue
                if not handle(streamed):
                    return
                self.after = streamed.seq
                continue
            if read_api:
                caught_up = self._read_api(handle, missing, wakes)
                if caught_up is None:
                    return
                if not caught_up:
                    continue
                read_api = False
            idle(self.after)
            self.signal.wait_past(self.after, wakes, POLL_SECONDS)
            # Woken by a reconnection, or by the poll's time: read the API. Woken by a new seq:
            # the stream may have it.
            read_api = self.signal.wakes != wakes or self.signal.latest <= self.after

    def _streamed(self, seq: int) -> Capture | None:
        if self.recent is None:
            return None
        return self.recent.wait_for(seq, REORDER_WAIT)

    def _read_api(self, handle: Handle, missing: Missing, wakes: int) -> bool | None:
        """Read one page after the position and hand it on: True when caught up, False when
        there is more (or the server could not be read), None when stopped."""
        try:
            page = self.feed.page(self.after)
        except Unreachable as err:
            self.note("server", f"cannot read the bin: {err}; trying again")
            self._failing = True
            self.signal.wait_past(2**63, wakes, self._retry)
            self._retry = min(self._retry * 2, RETRY_MAX)
            return False
        if self._failing:
            self.note("server", "reading the bin again")
            self._retry, self._failing = RETRY_FIRST, False
        for capture in page.captures:
            if capture.seq > self.after + 1:
                missing(self.after + 1, capture.seq - 1)
            if not handle(capture):
                return None
            self.after = capture.seq
        if page.more:
            return False
        if not page.captures and page.last_seq > self.after:
            # Nothing is left up to the bin's last seq: what was there has been deleted.
            missing(self.after + 1, page.last_seq)
            self.after = page.last_seq
        self.signal.saw(page.last_seq)
        return True
