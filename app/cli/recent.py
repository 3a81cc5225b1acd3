"""The captures the live stream brought in full, by seq, for the readers to take in order.

Bounded by count and bytes: the oldest go first, and a reader that needs one that went (a slow
target fell far behind) reads it by seq from the API instead. Entries are never taken away, so
several readers (one per target) can each take the same capture.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from app.cli.feed import Capture

MAX_CAPTURES = 2000
MAX_BYTES = 64 * 1024 * 1024
# A capture whose body the stream did not carry: the reader fetches it without waiting.
TOO_LARGE = "too large"


class Recent:
    """Captures by seq, filled by the stream's thread, read by the readers' threads."""

    def __init__(self, max_captures: int = MAX_CAPTURES, max_bytes: int = MAX_BYTES) -> None:
        self._max_captures, self._max_bytes = max_captures, max_bytes
        self._by_seq: OrderedDict[int, Capture | str] = OrderedDict()
        self._bytes = 0
        self._changed = threading.Condition()
        self.live = False  # the stream is up and sends captures in full

    def put(self, seq: int, capture: Capture | str) -> None:
        with self._changed:
            if seq in self._by_seq:
                return
            self._by_seq[seq] = capture
            self._bytes += _size(capture)
            while len(self._by_seq) > self._max_captures or self._bytes > self._max_bytes:
                _, gone = self._by_seq.popitem(last=False)
                self._bytes -= _size(gone)
            self._changed.notify_all()

    def wait_for(self, seq: int, timeout: float) -> Capture | None:
        """Return capture ``seq`` once the stream has brought it, or None: not within
        ``timeout`` (it may come in another order, so it is worth a short wait), too large for
        the stream, or the stream is not sending captures in full."""
        with self._changed:
            self._changed.wait_for(lambda: seq in self._by_seq or not self.live, timeout)
            found = self._by_seq.get(seq)
        return found if isinstance(found, Capture) else None

    def set_live(self, live: bool) -> None:
        with self._changed:
            self.live = live
            self._changed.notify_all()


def _size(capture: Capture | str) -> int:
    return len(capture.body) if isinstance(capture, Capture) else 0
