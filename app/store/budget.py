"""The instance's storage figures in each process, and the capture gate's check against them.

The rules are app/domain/budgets.py's; this module keeps the figures they need without summing
anything on the capture path.

Refresh rule, per process: the stored total (``SUM(bins.stored_bytes)``), the number of bins
holding anything and the free space on the SQLite file's volume (``statvfs``) are read when a
capture needs them and the last read is older than HOOKSCOPE_STORAGE_CHECK_SECONDS (a scan of
the ``stored_bytes`` index, in a native thread on SQLite, so the event loop goes on). Between
reads the process adds what its own captures stored, net of what their retention freed. So the
total a process judges by misses at most what other processes stored since its last read (their
rate times the interval); with one process, the embedded default, it misses only what was
deleted meanwhile, which errs on the side of refusing.

While the instance is at its budget, the same read lists the heaviest bins at or above the fair
share (at most ``HEAVY_LISTED``, from the index), and a capture here that leaves its bin at or
above the share adds it at once; such bins are read again at the next read, so one cleared
meanwhile is let back in within the interval.

``figures_of(app)`` returns the numbers for /readyz, the admin view and, later, metrics.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask

from app.domain import budgets
from app.domain.budgets import Limits, Refusal
from app.extensions import db, under_gevent

EXTENSION = "hookscope.storage_budget"
# The heaviest bins each read lists while over budget; lighter ones above the share are caught
# by their first capture in this process.
HEAVY_LISTED = 1000
log = logging.getLogger("hookscope.storage")


@dataclass(frozen=True)
class Figures:
    """The instance's storage as read at one moment."""

    stored_bytes: int
    active_bins: int  # bins holding anything
    free_disk_bytes: int | None  # None: not checked (PostgreSQL, or the check is off)
    bins: int = 0
    requests: int = 0
    # Bins holding at least the fair share, with their bytes (read only while over budget).
    heavy: dict[str, int] = field(default_factory=dict)


class InstanceBudget:
    """One per process: the instance budget and free disk space, checked per capture."""

    def __init__(
        self,
        limits: Limits,
        read: Callable[[Limits, list[str]], Figures],
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self._read = read
        self._interval = interval
        self._clock = clock
        self._figures: Figures | None = None
        self._read_at = float("-inf")
        self._reading = False
        # Bytes and requests this process stored since the last read (net of retention), and the
        # heavy bins.
        self._added = self._added_requests = 0
        self._heavy: dict[str, int] = {}
        # Heavy bins found by this process's captures rather than listed: read again each time.
        self._noted: set[str] = set()
        self._over = self._low = False

    @property
    def enabled(self) -> bool:
        return bool(self.limits.max_storage_bytes or self.limits.min_free_disk_bytes)

    def refusal(self, bin_id: str, size: int) -> Refusal | None:
        """Tell why a capture of ``size`` bytes to ``bin_id`` must not be stored, if it must not."""
        if not self.enabled or self._current() is None:
            return None
        free = self._free()
        if budgets.disk_low(self.limits, free, size):
            return budgets.disk_refusal(self.limits, free)  # type: ignore[arg-type]
        held = self._heavy.get(bin_id)
        if held is not None and self._over:
            share = self._share() or 0
            return budgets.budget_refusal(self.limits, self._stored(), share, held)
        return None

    def note(self, bin_id: str, added: int, requests: int, bin_bytes: int) -> None:
        """Count what one of this process's captures stored, net of what its retention freed
        (bytes and requests); ``bin_bytes`` is what its bin holds now."""
        self._added += added
        self._added_requests += requests
        if not self.enabled:
            return
        was_over = self._over
        self._judge()
        share = self._share()
        if self._over and share is not None and bin_bytes >= share:
            self._heavy[bin_id] = bin_bytes
            self._noted.add(bin_id)
        if self._over and not was_over:
            self._read_at = float("-inf")  # list the heavy bins at the next capture

    def figures(self, fresh: bool = False) -> dict[str, Any]:
        """The numbers an operator watches (/readyz, the admin view, metrics), read again first
        when older than the interval, or ``fresh``."""
        if fresh:
            self._read_at = float("-inf")
        figures = self._current()
        share = self._share()
        return {
            "bins": figures.bins if figures else None,
            "requests": figures.requests + self._added_requests if figures else None,
            "stored_bytes": self._stored() if figures else None,
            "max_storage_bytes": self.limits.max_storage_bytes or None,
            "active_bins": figures.active_bins if figures else None,
            "fair_share_bytes": share if self._over else None,
            "over_budget": self._over,
            "refused_bins": len(self._heavy) if self._over else 0,
            "free_disk_bytes": self._free(),
            "min_free_disk_bytes": self.limits.min_free_disk_bytes or None,
            "disk_low": self._low,
        }

    def _current(self) -> Figures | None:
        """The last figures read, read again first when they are older than the interval."""
        now = self._clock()
        # A failed read counts as a read: while the database fails, it is asked once an
        # interval, not once a capture (with no figures yet, every capture would ask again).
        if self._reading or now - self._read_at < self._interval:
            return self._figures
        self._reading = True
        added_before, requests_before = self._added, self._added_requests
        try:
            figures = self._read(self.limits, sorted(self._noted)[:HEAVY_LISTED])
        except Exception as err:  # a database hiccup must not fail the capture that asked
            log.warning("reading the storage figures failed: %s", err.__class__.__name__)
            self._read_at = now
            return self._figures
        finally:
            self._reading = False
        # What was stored while reading may be counted twice: that errs on the side of refusing.
        self._added -= added_before
        self._added_requests -= requests_before
        self._figures, self._read_at = figures, self._clock()
        self._heavy = dict(figures.heavy)
        self._noted &= set(figures.heavy)
        self._judge()
        return figures

    def _stored(self) -> int:
        return (self._figures.stored_bytes if self._figures else 0) + self._added

    def _free(self) -> int | None:
        free = self._figures.free_disk_bytes if self._figures else None
        return None if free is None else free - max(self._added, 0)

    def _share(self) -> int | None:
        active = self._figures.active_bins if self._figures else 0
        return budgets.fair_share(self.limits, active)

    def _judge(self) -> None:
        """Work out both states from the figures; log each change of either."""
        over = budgets.over_budget(self.limits, self._stored())
        low = budgets.disk_low(self.limits, self._free())
        if over != self._over:
            if over:
                log.warning(
                    "storage budget reached: captures hold %s of HOOKSCOPE_MAX_STORAGE_BYTES=%d;"
                    " bins holding more than their fair share (%s over %d bins) get 507",
                    budgets.human(self._stored()),
                    self.limits.max_storage_bytes,
                    budgets.human(self._share() or 0),
                    self._figures.active_bins if self._figures else 0,
                )
            else:
                log.warning("storage back under budget: captures hold %s", self._stored())
        if low != self._low:
            if low:
                log.warning(
                    "free disk space %s is below HOOKSCOPE_MIN_FREE_DISK_BYTES=%d;"
                    " every capture gets 507",
                    budgets.human(max(0, self._free() or 0)),
                    self.limits.min_free_disk_bytes,
                )
            else:
                log.warning("free disk space back above HOOKSCOPE_MIN_FREE_DISK_BYTES")
        self._over, self._low = over, low


def budget_of(app: Flask) -> InstanceBudget:
    """The app's instance budget (one per process)."""
    budget = app.extensions.get(EXTENSION)
    if budget is None:
        config = app.config
        limits = Limits(
            config["HOOKSCOPE_MAX_STORAGE_BYTES"], config["HOOKSCOPE_MIN_FREE_DISK_BYTES"]
        )
        budget = app.extensions[EXTENSION] = InstanceBudget(
            limits,
            lambda limits, recheck: read_figures(app, limits, recheck),
            config["HOOKSCOPE_STORAGE_CHECK_SECONDS"],
        )
    return budget


def figures_of(app: Flask, fresh: bool = False) -> dict[str, Any]:
    """The storage figures of this process's view, for /readyz, the admin view and metrics."""
    return budget_of(app).figures(fresh)


# One pass over the index on (stored_bytes, id, request_count), not the table.
_TOTAL = (
    "SELECT coalesce(sum(stored_bytes), 0), count(*) FILTER (WHERE stored_bytes > 0), count(*),"
    " coalesce(sum(request_count), 0) FROM bins"
)
_HEAVY = (
    "SELECT id, stored_bytes FROM bins WHERE stored_bytes >= {mark}"  # noqa: S608 - constants
    f" ORDER BY stored_bytes DESC LIMIT {HEAVY_LISTED}"
)
_RECHECK = "SELECT id, stored_bytes FROM bins WHERE stored_bytes >= {mark} AND id IN ({marks})"
_MARK = {"sqlite": "?", "postgresql": "%s"}


def read_figures(app: Flask, limits: Limits, recheck: list[str] | None = None) -> Figures:
    """Read the stored total, the bins holding anything and, when over budget, the heaviest
    (and those of ``recheck`` still heavy); and the free space on the SQLite file's volume."""
    with app.app_context():
        engine = db.engine
        conn = engine.raw_connection()  # checked out here: under gevent the pool is gevent's
    dialect = engine.dialect.name
    try:
        if dialect == "sqlite" and under_gevent():
            import gevent

            totals, heavy = gevent.get_hub().threadpool.apply(
                _query, (conn, dialect, limits, recheck or [])
            )
        else:
            totals, heavy = _query(conn, dialect, limits, recheck or [])
    finally:
        conn.close()
    free = None
    if dialect == "sqlite" and limits.min_free_disk_bytes and engine.url.database:
        free = free_disk_bytes(engine.url.database)
    stored, active, bins, requests = totals
    return Figures(stored, active, free, bins, requests, heavy)


def _query(
    conn: Any, dialect: str, limits: Limits, recheck: list[str]
) -> tuple[tuple[int, int, int, int], dict[str, int]]:
    cur = conn.cursor()
    mark = _MARK[dialect]
    try:
        cur.execute(_TOTAL)
        stored, active, bins, requests = (int(n) for n in cur.fetchone())
        heavy: dict[str, int] = {}
        share = budgets.fair_share(limits, active)
        if share is not None and budgets.over_budget(limits, stored):
            cur.execute(_HEAVY.format(mark=mark), (share,))
            heavy = dict(cur.fetchall())
            if recheck:
                marks = ", ".join([mark] * len(recheck))
                cur.execute(_RECHECK.format(mark=mark, marks=marks), (share, *recheck))
                heavy.update(cur.fetchall())
    finally:
        cur.close()
        conn.rollback()  # end the read transaction (PostgreSQL); a no-op in autocommit
    return (stored, active, bins, requests), heavy


def free_disk_bytes(database: str) -> int | None:
    """Free space for this user on the volume holding the SQLite file (None: in memory)."""
    if database == ":memory:" or database.startswith("file:"):
        return None
    stat = os.statvfs(os.path.dirname(os.path.abspath(database)) or ".")
    return stat.f_bavail * stat.f_frsize
