"""Read a bin's captures in sequence order after a position, for as long as the command runs.

Everything is fetched by seq from the API (app/cli/feed.py), so nothing depends on a live event
arriving: the stream (app/cli/stream.py) only wakes the reader early. Sequence numbers that are
skipped were deleted or dropped by the bin's retention before they could be read, and are
reported as missing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from app.cli.feed import Capture, Feed, Unreachable
from app.cli.stream import Signal

# Fetch this often even when the stream is quiet (a stream that lost events, a Redis hiccup).
POLL_SECONDS = 5.0
# Waits after a failed fetch: doubling from the first, at most the last; a reconnected stream
# cuts the wait short.
RETRY_FIRST, RETRY_MAX = 0.25, 5.0

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
    ) -> None:
        self.feed, self.signal, self.stop, self.note = feed, signal, stop, note
        self.after = after

    def run(self, handle: Handle, missing: Missing, idle: Idle) -> None:
        """Hand every capture after the position to ``handle``, in order, until stopped.

        Raises feed.Refused when the server refuses for good (no such bin, wrong key).
        """
        retry, failing = RETRY_FIRST, False
        while not self.stop.is_set():
            wakes = self.signal.wakes
            try:
                page = self.feed.page(self.after)
            except Unreachable as err:
                self.note("server", f"cannot read the bin: {err}; trying again")
                failing = True
                self.signal.wait_past(2**63, wakes, retry)
                retry = min(retry * 2, RETRY_MAX)
                continue
            if failing:
                self.note("server", "reading the bin again")
                retry, failing = RETRY_FIRST, False
            for capture in page.captures:
                if capture.seq > self.after + 1:
                    missing(self.after + 1, capture.seq - 1)
                if not handle(capture):
                    return
                self.after = capture.seq
            if page.more:
                continue
            if not page.captures and page.last_seq > self.after:
                # Nothing is left up to the bin's last seq: what was there has been deleted.
                missing(self.after + 1, page.last_seq)
                self.after = page.last_seq
            self.signal.saw(page.last_seq)
            idle(self.after)
            self.signal.wait_past(self.after, wakes, POLL_SECONDS)
