"""Count what each bin took and refused, in memory; add the counts to the database every 2 s.

The capture gate counts every stored capture (and its body's bytes) and every refusal with its
reason (app/domain/refusals.py) here: a dictionary update, no I/O. A greenlet in each worker adds
what was counted to ``bin_usage`` every ``FLUSH_SECONDS`` in one transaction
(app/store/usage.py), then tells the open pages of each bin that had refusals (a ``refused``
event, so at most one per bin per flush). These are statistics, not captures: a worker killed
outright loses at most the last ``FLUSH_SECONDS`` of its counts (a graceful stop adds them
first); while storage is down they are held (up to ``MAX_KEYS`` entries) and added once it is back.

Refusals before a bin is known (a malformed request head, an unknown bin) are counted per process
only, in ``Tally.process``, and logged with each flush that has new ones.

Outside gunicorn (tests, the CLI) no greenlet runs: reading a bin's usage adds this process's
counts first (``flush``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from flask import Flask

from app import live
from app.domain.refusals import CAPTURED
from app.extensions import db, socketio, under_gevent
from app.store import usage
from app.store.errors import StorageUnavailable
from app.store.usage import Counted, period_of

FLUSH_SECONDS = 2.0
# Distinct (bin, period, reason) counts held between flushes; past it (storage down for long,
# captures into very many bins), further ones are counted per process only, as "uncounted".
MAX_KEYS = 50_000
EXTENSION = "hookscope.tally"
log = logging.getLogger("hookscope.usage")


class Tally:
    """This process's counts since the last flush."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._counts: dict[tuple[str, int, str], list[int]] = {}
        # Refused before a bin was known, since the process started (reason -> count).
        self.process: Counter[str] = Counter()
        self._logged: Counter[str] = Counter()
        # Under gevent nothing here waits, so no other greenlet runs in between: no lock needed.
        self._lock: Any = contextlib.nullcontext() if under_gevent() else threading.Lock()

    def count(self, bin_id: str, reason: str, size: int = 0) -> None:
        """Count one capture (``CAPTURED``, with its body's size) or one refusal for a bin."""
        key = (bin_id, period_of(self._clock()), reason)
        with self._lock:
            entry = self._counts.get(key)
            if entry is not None:
                entry[0] += 1
                entry[1] += size
            elif len(self._counts) < MAX_KEYS:
                self._counts[key] = [1, size]
            else:
                self.process["uncounted"] += 1

    def count_process(self, reason: str) -> None:
        """Count a refusal that no bin can be charged with."""
        with self._lock:
            self.process[reason] += 1

    def take(self) -> list[Counted]:
        """Everything counted since the last take."""
        with self._lock:
            counts, self._counts = self._counts, {}
        return [Counted(*key, n, size) for key, (n, size) in counts.items()]

    def restore(self, counted: list[Counted]) -> None:
        """Put back counts that could not be stored, to be added with the next flush."""
        for c in counted:
            with self._lock:
                entry = self._counts.setdefault((c.bin_id, c.period, c.reason), [0, 0])
                entry[0] += c.count
                entry[1] += c.bytes

    def process_news(self) -> dict[str, int]:
        """Per-process refusals counted since the last call."""
        with self._lock:
            news = self.process - self._logged
            self._logged = self.process.copy()
        return dict(news)


def tally_of(app: Flask) -> Tally:
    """The app's tally in this process."""
    tally = app.extensions.get(EXTENSION)
    if tally is None:
        tally = app.extensions[EXTENSION] = Tally()
    return tally


def flush(app: Flask) -> list[str]:
    """Add what was counted to bin_usage and tell pages; return the bins that had refusals.

    When storage fails the counts are kept for the next flush.
    """
    tally = tally_of(app)
    news = tally.process_news()
    if news:
        listed = ", ".join(f"{reason}={n}" for reason, n in sorted(news.items()))
        log.info("refused before a bin was known (this process): %s", listed)
    counted = tally.take()
    if not counted:
        return []
    try:
        with app.app_context():
            usage.add(db.engine, counted)
    except StorageUnavailable as err:
        tally.restore(counted)
        log.warning("usage counts kept for later: storage is unavailable: %s", err)
        return []
    refused = sorted({c.bin_id for c in counted if c.reason != CAPTURED})
    for bin_id in refused:
        live.publish_refused(bin_id)
    return refused


def start(app: Flask) -> None:
    """Flush this worker's counts every FLUSH_SECONDS."""
    socketio.start_background_task(_loop, app)


def _loop(app: Flask) -> None:
    while True:
        socketio.sleep(FLUSH_SECONDS)
        try:
            flush(app)
        except Exception:  # a bug must not end the counting; the counts of this flush are lost
            log.exception("adding usage counts failed")
