"""Auto-forward inside each worker: send new captures to their bins' targets, retry, record.

A capture's tries are stored with it, due at once and leased to the process that stored it
(app/store/sqlite.py, postgres.py), so the sender's answer waits for nothing more than that
insert, and a try survives any restart. After the commit the gate hands this process's
forwarder the capture (``offer``), which sends it from memory. A sweep every second takes due
tries nobody holds: retries whose delay has passed, and tries whose process stopped or died
(its lease ran out), so after a restart the next process resumes them, and with several
processes or hosts each try is taken by one. Outcomes are written in batches.

Sends share the process's outbound slots with replays (HOOKSCOPE_OUTBOUND_CONCURRENCY, and
per bin), taken round-robin over bins so one bin's slow target does not hold up the others.
Connections to a target are kept open between tries (app/outbound/pool.py). Under gevent
only: the server's workers.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask

from app.domain import clock, forwarding
from app.extensions import db
from app.outbound import bounds, client, loop, outcome
from app.outbound.outgoing import capture_headers
from app.outbound.pool import Pool
from app.runtime import metrics
from app.store import forwards, threads
from app.store.batch import Recorded
from app.store.errors import discard

log = logging.getLogger("hookscope.forward")
SWEEP_SECONDS = 1.0
CLAIM_BATCH = 200
# Tries held in memory; past it they are handed back to the table for a later sweep.
MAX_QUEUED = 10_000
MAX_QUEUED_BYTES = 64 * 1024 * 1024
# Outcomes gather this long before they are written, so a burst is one transaction.
FLUSH_SECONDS = 0.05


@dataclass
class Job:
    attempt_id: int
    bin_id: str
    method: str
    url: str
    headers: list[list[str]]
    body: bytes
    try_number: int
    lease_until: datetime


def forwarder_of(app: Flask) -> Forwarder | None:
    """This process's forwarder, when it runs one (the server's workers do)."""
    return bounds.forwarder_of(app)


def start(app: Flask) -> Forwarder:
    """Start forwarding in this worker."""
    forwarder = app.extensions[bounds.FORWARDER] = Forwarder(app)
    forwarder.start()
    return forwarder


class Forwarder:
    """One per worker process (see the module docstring)."""

    def __init__(self, app: Flask) -> None:
        import gevent
        from gevent.event import Event
        from gevent.threadpool import ThreadPool

        self._gevent = gevent
        config = app.config
        self.app = app
        self.allow = bounds.allow_of(config)
        self.limits = bounds.limits_of(config)
        self.slots = bounds.slots_of(app)
        # Connections kept open between tries to the same target (a new one each time cost
        # the worker more than the capture).
        self.pool = Pool()
        self.own = bounds.own_urls(config)
        self.lease = timedelta(seconds=forwarding.lease_seconds(self.limits.timeout))
        self.retry_seconds = config["HOOKSCOPE_FORWARD_RETRY_SECONDS"]
        self.max_attempts = config["HOOKSCOPE_FORWARD_MAX_ATTEMPTS"]
        with app.app_context():
            self.engine = db.engine
        # SQLite waits for its write lock in C: in a native thread, never on the event loop.
        self._thread = ThreadPool(1) if self.engine.dialect.name == "sqlite" else None
        self.queues: dict[str, deque[Job]] = {}
        self.queued = 0
        self.queued_bytes = 0
        self.finished: list[forwards.Finished] = []
        self.released: list[int] = []
        self.sending: set[Any] = set()
        self.stopping = False
        self._wake = Event()
        self._flush_wake = Event()
        self._loops: list[Any] = []

    def start(self) -> None:
        spawn = self._gevent.spawn
        self._loops = [spawn(self._dispatch), spawn(self._flush_loop), spawn(self._sweep_loop)]

    def offer(self, recorded: Recorded, method: str, path: str, query: str, headers, body) -> None:
        """Queue a just-stored capture's tries (never waits)."""
        sent = capture_headers(headers)
        until = clock.now() + self.lease
        for attempt_id, target in recorded.forwards:
            url = forwarding.forward_url(target, path, query)
            job = Job(attempt_id, recorded.summary["bin"], method, url, sent, body, 1, until)
            self._queue(job)

    def _queue(self, job: Job) -> None:
        if (
            self.stopping
            or self.queued >= MAX_QUEUED
            or self.queued_bytes + len(job.body) > MAX_QUEUED_BYTES
        ):
            self.released.append(job.attempt_id)  # the table keeps it; a later sweep sends it
            self._flush_wake.set()
            return
        self.queues.setdefault(job.bin_id, deque()).append(job)
        self.queued += 1
        self.queued_bytes += len(job.body)
        self._wake.set()

    def _next(self) -> Job | None:
        """Take the next job of the first bin (in turn) that has a free slot."""
        for bin_id in list(self.queues):
            if not self.slots.free_for(bin_id):
                continue
            jobs = self.queues.pop(bin_id)
            job = jobs.popleft()
            if jobs:
                self.queues[bin_id] = jobs  # to the back of the line
            self.queued -= 1
            self.queued_bytes -= len(job.body)
            return job
        return None

    def _dispatch(self) -> None:
        while not self.stopping:
            self._wake.wait()
            self._wake.clear()
            while not self.stopping:
                job = self._next()
                if job is None:
                    break
                self.slots.take(job.bin_id)
                sender = self._gevent.spawn(self._send, job)
                self.sending.add(sender)
                sender.link(self.sending.discard)

    def _send(self, job: Job) -> None:
        try:
            started = clock.now()
            if job.lease_until - started < timedelta(seconds=self.limits.timeout + 1):
                # The lease could run out mid-call and another process send it too: leave it
                # to the sweep that takes it once the lease has run out.
                return
            refused = loop.loop_refusal(job.url, self.own)
            if refused:
                result = client.Result("forward_loop", refused, job.url)
            else:
                result = client.send(
                    job.method,
                    job.url,
                    job.headers,
                    job.body,
                    allow=self.allow,
                    limits=self.limits,
                    pool=self.pool,
                )
            finished = clock.now()
            metrics.count_outbound("forward", metrics.outcome(result.status, result.error))
            retry_at = self._retry_at(job, result, finished)
            self.finished.append(
                forwards.Finished(
                    job.attempt_id, started, finished, outcome.columns(result), retry_at
                )
            )
            self._flush_wake.set()
        except Exception:  # a bug: the try stays leased and is taken again when that runs out
            log.exception("forwarding attempt %d failed", job.attempt_id)
        finally:
            self.slots.give_back(job.bin_id)
            self._wake.set()

    def _retry_at(self, job: Job, result: client.Result, finished: datetime) -> datetime | None:
        """When the next try is due, or None when this outcome ends the forward."""
        if not forwarding.retried(result.error, result.status):
            return None
        delay = forwarding.retry_delay(job.try_number, self.retry_seconds, self.max_attempts)
        if delay is None:
            return None
        # Up to a tenth more, so that tries failed together do not all come back together.
        return finished + timedelta(seconds=delay * random.uniform(1.0, 1.1))  # noqa: S311

    def _flush_loop(self) -> None:
        while True:
            self._flush_wake.wait()
            self._gevent.sleep(FLUSH_SECONDS)  # let a burst's outcomes gather
            self._flush_wake.clear()
            if not self.flush():
                self._gevent.sleep(1.0)
                self._flush_wake.set()

    def flush(self) -> bool:
        """Write the outcomes and hand-backs gathered so far; False when the database failed."""
        finished, self.finished = self.finished, []
        released, self.released = self.released, []
        try:
            if finished:
                self._db(forwards.finish, finished)
            if released:
                self._db(forwards.release, released)
        except Exception as err:  # the database is down: keep them for the next flush
            log.warning("recording %d forward outcome(s) failed: %s", len(finished), err)
            self.finished[:0] = finished
            self.released[:0] = released
            return False
        return True

    def _sweep_loop(self) -> None:
        while not self.stopping:
            # Jitter keeps the workers of one host from sweeping together.
            self._gevent.sleep(SWEEP_SECONDS * random.uniform(0.8, 1.2))  # noqa: S311
            if self.stopping or self.queued >= MAX_QUEUED // 2:
                continue
            try:
                self.sweep()
            except Exception as err:  # the database is down: the next sweep tries again
                log.warning("taking due forward attempts failed: %s", err)

    def sweep(self) -> int:
        """Take due tries nobody holds and queue them; return how many."""
        now = clock.now()
        claimed = self._db(forwards.claim, now, now + self.lease, CLAIM_BATCH)
        for c in claimed:
            url = forwarding.forward_url(c.target, c.path, c.query_string)
            headers = capture_headers(c.headers)
            self._queue(
                Job(
                    c.attempt_id,
                    c.bin_id,
                    c.method,
                    url,
                    headers,
                    c.body,
                    c.try_number,
                    now + self.lease,
                )  # fmt: skip
            )
        return len(claimed)

    def _db(self, work, *args):  # noqa: ANN001, ANN202 - one of app/store/forwards.py's
        conn = self.engine.raw_connection()  # here, not in the thread: the pool is gevent's
        try:
            if self._thread is None:
                return work(conn, *args)
            return threads.run(self._thread, work, conn, *args)
        except BaseException:
            discard(conn)
            raise
        finally:
            conn.close()

    def stop(self, wait_seconds: float) -> None:
        """Let sends in flight finish (a while), record them, hand back what was not sent."""
        self.stopping = True
        self._wake.set()
        if self.sending:
            self._gevent.joinall(list(self.sending), timeout=wait_seconds)
        for jobs in self.queues.values():
            self.released += [job.attempt_id for job in jobs]
        self.queues.clear()
        self.flush()
        self.pool.close()
        self._gevent.killall(self._loops, block=False)
