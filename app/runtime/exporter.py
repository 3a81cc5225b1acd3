"""Turn this process's tally (app/runtime/metrics.py) into prometheus-client's values, and render.

Made on first use in each process (a gunicorn worker after its fork), so that prometheus-client
is imported after PROMETHEUS_MULTIPROC_DIR is set and its files are named after the worker.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from app.internals import Reliance
from app.runtime import metrics
from app.runtime.metrics import BATCH_BUCKETS, LATENCY_BUCKETS, MULTIPROC_ENV, Taken

log = logging.getLogger("hookscope.metrics")
PROMETHEUS = "prometheus-client"


class Exporter:
    """This process's prometheus-client metrics."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        # Multiprocess: the values are in files that every worker's scrape reads; registered
        # nowhere. Otherwise this process's own registry (never the global one: tests make many
        # apps in one process).
        registry = None if self.multiprocess else CollectorRegistry()
        self.registry = registry
        self.captures = Counter(
            "hookscope_captures",
            "Captures answered, by the status sent",
            ["status"],
            registry=registry,
        )
        self.received = Counter(
            "hookscope_capture_received_bytes",
            "Body bytes of the captures read whole",
            registry=registry,
        )
        self.latency = Histogram(
            "hookscope_capture_duration_seconds",
            "Time from a capture's arrival at the gate to its answer",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.batches = Histogram(
            "hookscope_batch_size",
            "Captures stored by one group-commit transaction",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.refusals = Counter(
            "hookscope_refusals",
            "Captures refused by the gate, by reason",
            ["reason"],
            registry=registry,
        )
        self.watchers = Gauge(
            "hookscope_live_watchers",
            "Sockets watching a bin",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.events = Counter(
            "hookscope_live_events_sent",
            "Live events handed to a watcher's socket",
            registry=registry,
        )
        self.outbound = Counter(
            "hookscope_outbound_attempts",
            "Requests sent to other servers, by feature and outcome",
            ["kind", "outcome"],
            registry=registry,
        )
        self._bucketed = _bucket_values(self.latency) and _bucket_values(self.batches)
        if not self._bucketed:
            log.warning(
                "%s has no per-bucket values on Histogram: histograms are flushed one"
                " observation at a time (install %s, as pinned in pyproject.toml)",
                PROMETHEUS,
                _wanted(),
            )

    def add(self, taken: Taken) -> None:
        """Add one flush's worth of counts."""
        for status, n in taken.captures.items():
            self.captures.labels(str(status)).inc(n)
        if taken.received_bytes:
            self.received.inc(taken.received_bytes)
        self._observe(self.latency, taken.latency)
        self._observe(self.batches, taken.batches)
        for reason, n in taken.refusals.items():
            self.refusals.labels(reason).inc(n)
        self.watchers.set(taken.watchers)
        if taken.events_sent:
            self.events.inc(taken.events_sent)
        for (kind, outcome), n in taken.outbound.items():
            self.outbound.labels(kind, outcome).inc(n)

    def _observe(self, histogram: Any, taken: tuple[list[int], list[float]]) -> None:
        counts, sums = taken
        if not any(counts):
            return
        if self._bucketed:
            # One increment per bucket that changed, where observe() would be one per capture.
            for value, n in zip(histogram._buckets, counts, strict=True):
                if n:
                    value.inc(n)
            histogram._sum.inc(sum(sums))
            return
        # The public way: each bucket's observations at their mean, which lies in that bucket,
        # so both the counts and the sum come out right.
        for n, bucket_sum in zip(counts, sums, strict=True):
            for _ in range(n):
                histogram.observe(bucket_sum / n)

    def render(self) -> bytes:
        """The text exposition of every worker's values (or this process's)."""
        from prometheus_client import CollectorRegistry, generate_latest, multiprocess

        if self.registry is not None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)


def _bucket_values(histogram: Any) -> bool:
    """Tell whether prometheus-client keeps a value per bucket and one for the sum, as 0.26 does
    (a private part: the version is pinned exactly)."""
    buckets = getattr(histogram, "_buckets", None)
    return (
        isinstance(buckets, list)
        and len(buckets) == len(histogram._upper_bounds)
        and all(hasattr(value, "inc") for value in buckets)
        and hasattr(getattr(histogram, "_sum", None), "inc")
    )


def _wanted() -> str:
    from app import internals

    return internals.wanted(PROMETHEUS)


def _histogram_keeps_bucket_values() -> bool:
    """A Histogram keeps a value per bucket and one for the sum (read from its source: making
    one here would add a series to every scrape)."""
    import inspect

    from prometheus_client import Histogram

    source = inspect.getsource(Histogram._metric_init)
    return "self._buckets" in source and "self._sum" in source


# The private part this module relies on (app/internals.py): without it a flush observes each
# capture one by one (``Exporter._observe``), the public way.
RELIANCES = (
    Reliance(
        PROMETHEUS,
        "prometheus_client.metrics:Histogram._metric_init",
        "with HOOKSCOPE_METRICS, histograms would be written one observation at a time",
        fallback=True,
        behaves=_histogram_keeps_bucket_values,
    ),
)


_exporter: Exporter | None = None


def exporter() -> Exporter:
    """This process's exporter, made on first use."""
    global _exporter
    if _exporter is None:
        _exporter = Exporter()
    return _exporter


def flush() -> None:
    """Move what this process counted into prometheus-client's values."""
    tally = metrics.current
    if tally is not None:
        exporter().add(tally.take())


def start(every: float = metrics.FLUSH_SECONDS) -> None:
    """Flush every ``every`` seconds from a background greenlet (a gunicorn worker's)."""
    from app.extensions import socketio

    def loop() -> None:
        while True:
            socketio.sleep(every)
            try:
                flush()
            except Exception:  # a bug must not stop the counting
                log.exception("flushing metrics failed")

    if metrics.current is not None:
        exporter()  # now, so that a worker that cannot count says so when it starts
        socketio.start_background_task(loop)
