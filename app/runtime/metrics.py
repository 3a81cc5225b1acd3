"""Prometheus metrics, counted off the capture's path: ``/metrics`` when HOOKSCOPE_METRICS=true.

What is counted (every name starts ``hookscope_``):

| metric | type | labels |
| --- | --- | --- |
| ``captures_total`` | counter | ``status``: what the capture URL answered |
| ``capture_received_bytes_total`` | counter | body bytes of the captures read whole |
| ``capture_duration_seconds`` | histogram | from the request's arrival at the gate to its answer |
| ``batch_size`` | histogram | captures stored by one group-commit transaction |
| ``refusals_total`` | counter | ``reason``: the gate's (app/domain/refusals.py) |
| ``live_watchers`` | gauge | sockets watching a bin (sum over live workers) |
| ``live_events_sent_total`` | counter | live events handed to a watcher's socket |
| ``outbound_attempts_total`` | counter | ``kind``, ``outcome``: requests sent out (``outbound``) |

Counting must cost the capture almost nothing. prometheus-client's values live in per-process
memory-mapped files (its multiprocess mode, so that any worker can answer for all of them), and
one increment there takes a lock and writes the file: about 4-6 µs, so 15-20 µs a capture for
the four updates, against ~200 µs of worker CPU for the whole capture. So the counting code adds
to plain numbers in this process (``Tally``, a dict or list increment each) and ``flush`` turns
what was added since the last flush into increments of prometheus-client's values: once a second
from a greenlet (``start``), at once in the worker that answers a scrape, and when a worker exits.
When metrics are off nothing counts: ``current`` is None and callers check it first.

Multiprocess mode needs ``PROMETHEUS_MULTIPROC_DIR`` set before prometheus-client is imported:
the gunicorn master sets it (``prepare``, from app/runtime/serving.py) to a folder emptied at
each start, and marks each dead worker's gauges gone (``worker_gone``, gunicorn's child_exit).
Without it (the app outside gunicorn: tests, the CLI) the values are this process's alone.
"""

from __future__ import annotations

import bisect
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field

log = logging.getLogger("hookscope.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
FLUSH_SECONDS = 1.0
# Capture latency buckets, seconds: a stored capture takes a few ms, a 10 MiB body or a waited
# lock far longer.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@dataclass
class Histogram:
    """Observations counted into buckets (the last one is +Inf), with each bucket's sum."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    sums: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.counts, self.sums = [0] * (len(self.bounds) + 1), [0.0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        i = bisect.bisect_left(self.bounds, value)  # the first bound >= value, as Prometheus
        self.counts[i] += 1
        self.sums[i] += value

    def take(self) -> tuple[list[int], list[float]]:
        """What was observed since the last take (counts and sums by bucket); start over."""
        taken = self.counts, self.sums
        self.__post_init__()
        return taken


@dataclass
class Tally:
    """This process's counts since the last flush: plain numbers, cheap to add to."""

    captures: dict[int, int] = field(default_factory=dict)
    received_bytes: int = 0
    latency: Histogram = field(default_factory=lambda: Histogram(LATENCY_BUCKETS))
    batches: Histogram = field(default_factory=lambda: Histogram(BATCH_BUCKETS))
    refusals: dict[str, int] = field(default_factory=dict)
    watchers: int = 0  # a level, not a count: never reset by a flush
    events_sent: int = 0
    outbound: dict[tuple[str, str], int] = field(default_factory=dict)

    def capture(self, status: int, received: int, seconds: float) -> None:
        """Count one answered capture (the gate calls this once per capture)."""
        self.captures[status] = self.captures.get(status, 0) + 1
        self.received_bytes += received
        self.latency.observe(seconds)

    def refused(self, reason: str) -> None:
        """Count one capture the gate refused, by its reason (app/domain/refusals.py)."""
        self.refusals[reason] = self.refusals.get(reason, 0) + 1

    def take(self) -> Taken:
        """What was counted since the last take (and the watchers now); start the counts over."""
        taken = Taken(
            self.captures,
            self.received_bytes,
            self.latency.take(),
            self.batches.take(),
            self.refusals,
            self.watchers,
            self.events_sent,
            self.outbound,
        )
        self.captures, self.received_bytes, self.refusals = {}, 0, {}
        self.events_sent, self.outbound = 0, {}
        return taken


@dataclass(frozen=True)
class Taken:
    """One flush's worth of counts (``Tally.take``)."""

    captures: dict[int, int]
    received_bytes: int
    latency: tuple[list[int], list[float]]
    batches: tuple[list[int], list[float]]
    refusals: dict[str, int]
    watchers: int
    events_sent: int
    outbound: dict[tuple[str, str], int]


# This process's tally when metrics are on (``enable``), else None.
current: Tally | None = None


def enable() -> Tally:
    """Start counting in this process (idempotent); return the tally."""
    global current
    if current is None:
        current = Tally()
    return current


def count_outbound(kind: str, outcome: str) -> None:
    """Count one request sent to another server, for ``hookscope_outbound_attempts_total``.

    For the code that sends (replay, forward): ``kind`` says which feature ("replay",
    "forward"), ``outcome`` how it ended (``outcome(status, error)``: a status class like
    "2xx", or the client's error code). Keep both to a handful of values: each pair is a
    series. Costs nothing when metrics are off.
    """
    tally = current
    if tally is not None:
        tally.outbound[kind, outcome] = tally.outbound.get((kind, outcome), 0) + 1


def outcome(status: int | None, error: str | None) -> str:
    """An outbound call's outcome as a label: its status class ("2xx"), or the client's error
    code (a handful: app/outbound/client.py's Result)."""
    if status is not None:
        return f"{status // 100}xx"
    return error or "error"


def prepare(configured: str) -> str:
    """In the gunicorn master, before anything imports prometheus-client: point
    PROMETHEUS_MULTIPROC_DIR at an empty folder (``configured``, emptied, or a new temporary
    one) and return it. Values left by an earlier start would be added to this one's."""
    path = configured or tempfile.mkdtemp(prefix="hookscope-metrics-")
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.remove(os.path.join(path, name))
    os.environ[MULTIPROC_ENV] = path
    return path


def forget(path: str) -> None:
    """Remove a folder ``prepare`` made (when the master exits)."""
    shutil.rmtree(path, ignore_errors=True)


def worker_gone(pid: int) -> None:
    """Drop a dead worker's gauge values (its counters stay: they are history)."""
    from prometheus_client import multiprocess

    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)
