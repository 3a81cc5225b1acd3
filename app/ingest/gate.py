"""The public capture URL: accept any method on ``/h/<bin>`` and below, store it, tell watchers.

Captures do not go through Flask. They need none of what Flask does for pages (routing, sessions,
CSRF, templates, error pages), and at thousands of captures a second that work was most of the
cost; so a small WSGI layer in front of the Flask app takes every request under ``/h/`` and passes
everything else on. What it does, in order: find the bin's settings, apply the flood limits (429;
a request for a bin that does not exist counts against its sender and the server before its 404),
check the instance's storage budget and free disk space (507), read the body within its size,
time and memory limits and the bin's byte budget (413, 408, 400 for a body cut short, 503 past
the body bytes a process holds at once), store it through the group-commit writer (503 when
storage fails, so a sender is never told "ok" for something not stored), choose the answer from
the settings that transaction saw (app/ingest/answering.py), publish it to live watchers, answer
(after the answer's delay, in this greenlet alone), note what was answered when it was not the
default, and log one line.

With HOOKSCOPE_CAPTURE_HOST set, captures are taken only on that host and everything else only
on the others (app/ingest/hosts.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from sqlalchemy.exc import DBAPIError

from app import live, logs
from app.domain import budgets, clock, keys, paths
from app.domain.capture import Snapshot
from app.domain.refusals import CAPTURED, PROCESS_ONLY
from app.extensions import under_gevent
from app.ingest import respond, snapshot
from app.ingest.answering import Answering, Custom
from app.ingest.body import Environ, Refused, content_length, read_body, unread
from app.ingest.environ import HANG_UP
from app.ingest.hosts import HostSplit
from app.ingest.limits import CaptureLimits
from app.ingest.tally import tally_of
from app.outbound.bounds import forwarder_of
from app.runtime import metrics
from app.store.batch import Recorded, headers_json
from app.store.budget import budget_of
from app.store.errors import StorageUnavailable
from app.store.recorder import ANSWERER, recorder_of
from app.store.settings import cache_of

EXTENSION = "hookscope.capture"
log = logging.getLogger("hookscope.capture")
_SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
]
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    408: "Request Timeout",
    413: "Content Too Large",
    429: "Too Many Requests",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    507: "Insufficient Storage",
}

StartResponse = Callable[..., Any]
# The environ key under which the gate keeps the size of the body it read, for the metrics.
RECEIVED = "hookscope.received_bytes"


class CaptureGate:
    """WSGI layer in front of the Flask app: captures here, everything else to Flask."""

    def __init__(self, app: Flask, downstream: Callable[[Environ, StartResponse], Iterable[bytes]]):
        self.app = app
        self.config = app.config
        self.downstream = downstream
        self.limits = CaptureLimits(app)
        self.tally = tally_of(app)
        self.settings = cache_of(app)
        self.answering = Answering(app)
        # The writer answers each capture in its transaction (app/store/batch.py's judge).
        app.extensions[ANSWERER] = self.answering.decide
        capture_host = app.config["HOOKSCOPE_CAPTURE_HOST"]
        public_url = app.config["HOOKSCOPE_PUBLIC_URL"]
        self.hosts = HostSplit(capture_host, public_url) if capture_host else None
        self.budget = budget_of(app)
        self._gevent = under_gevent()
        # None when metrics are off: then nothing below counts (app/runtime/metrics.py).
        self.metrics = metrics.enable() if app.config["HOOKSCOPE_METRICS"] else None

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if self.hosts is not None:
            misdirected = self.hosts.refusal(environ, path)
            if misdirected is not None:
                if path.startswith(paths.CAPTURE_PREFIX):  # a capture sent to the pages' host
                    self.count_refusal(_bin_of(path), "wrong_host")
                return _plain(environ, start_response, 404, misdirected, {})
        if not path.startswith(paths.CAPTURE_PREFIX):
            return self.downstream(environ, start_response)
        started = time.perf_counter()
        bin_id = path[len(paths.CAPTURE_PREFIX) :].partition("/")[0]
        try:
            outcome = self.capture(environ, bin_id)
        except Refused as refusal:
            outcome = refusal.status, refusal.text, refusal.headers
            self.count_refusal(bin_id, refusal.reason)
        if isinstance(outcome, Custom):
            return self.answer(environ, start_response, outcome, started)
        status, text, headers = outcome
        self._done(environ, bin_id, status, started)
        return _plain(environ, start_response, status, text, headers)

    def count_refusal(self, bin_id: str, reason: str) -> None:
        """Never silent: the bin's page and API show what was refused and why. (A 503 can come
        before the bin is known: an id no bin could have is not kept per bin.)"""
        if reason in PROCESS_ONLY or not keys.ID_PATTERN.fullmatch(bin_id):
            self.tally.count_process(reason)
        else:
            self.tally.count(bin_id, reason)
        if self.metrics is not None:
            self.metrics.refused(reason)

    def capture(self, environ: Environ, bin_id: str) -> tuple[int, str, dict[str, str]] | Custom:
        """Store what arrived and tell anyone watching; say what the sender should hear."""
        received_at = clock.now()
        try:
            settings = self.settings.get(bin_id)
        except DBAPIError as err:
            log.error("capture failed: the database is unavailable: %s", err)
            raise self.unavailable() from None
        # A flood of made-up ids spends its sender's budget too, and then gets 429.
        spent = self.limits.check(environ, None if settings is None else bin_id)
        if spent is not None:
            raise Refused(
                429, spent.message, reason=spent.reason, **{"Retry-After": str(spent.retry_after)}
            )
        if settings is None:
            raise Refused(404, "no such bin", reason="no_such_bin")
        full = self.budget.refusal(bin_id, content_length(environ) or 0)
        if full is not None:
            raise unread(environ, 507, full.message, full.code)
        max_bytes = budgets.effective_max_bytes(
            settings.max_bytes, self.config["HOOKSCOPE_BIN_MAX_BYTES"]
        )
        recorder = recorder_of(self.app)
        hold = recorder.in_flight.hold()  # the body's bytes, from the first read to the commit
        try:
            body = read_body(environ, self.config, self._gevent, hold, max_bytes)
            if self.metrics is not None:
                environ[RECEIVED] = len(body)
            snap = snapshot.take(
                environ,
                body,
                mount=environ.get("SCRIPT_NAME", "") + paths.capture_path(bin_id),
                received_at=received_at,
            )
            stored_headers = headers_json(snap.headers)
            size = budgets.stored_size(len(body), stored_headers, snap.url)
            if max_bytes is not None and size > max_bytes:
                too_big = budgets.too_big_for_bin(size, max_bytes, "request")
                raise Refused(413, too_big.message, reason="bin_budget")
            recorded = recorder.record(
                bin_id, snap, environ.get("HTTP_AUTHORIZATION"), stored_headers, hold
            )
        except StorageUnavailable:
            raise self.unavailable() from None
        finally:
            hold.release()
        live.publish_storage_status(True, self.config["HOOKSCOPE_RETRY_AFTER_SECONDS"])
        if recorded is None:
            self.settings.forget(bin_id)
            raise Refused(404, "no such bin", reason="no_such_bin")
        self.settings.offer(recorded.settings)
        added = size - recorded.freed_bytes, 1 - len(recorded.dropped)
        self.budget.note(bin_id, *added, recorded.bin_bytes)
        self.tally.count(bin_id, CAPTURED, len(body))
        if not recorded.allowed:
            self.tally.count(bin_id, "unauthorized")
            if self.metrics is not None:
                self.metrics.refused("unauthorized")  # stored, flagged rejected, yet refused
        decided = recorded.decided
        if decided is not None:
            answer = decided.answer  # chosen, and stored, in the capture's own transaction
        else:
            answer = self.answering.answer(recorded, snap)  # it keeps a count: chosen now
        if answer is respond.DEFAULT:
            self.publish(recorded, snap)
            return 200, "ok", {"X-Hookscope-Seq": str(recorded.summary["seq"])}
        summary = recorded.summary
        if decided is None:
            summary["status"] = 0 if answer.hang_up else answer.status
            summary["delivery_id"] = answer.delivery_id
        self.publish(recorded, snap)
        return self.answering.custom(answer, bin_id, summary["seq"], decided is not None)

    def publish(self, recorded: Recorded, snap: Snapshot) -> None:
        """Tell watchers about the stored capture, and forward it where the bin says."""
        live.publish_capture(recorded, snap)
        if recorded.forwards:
            self.forward(recorded, snap)

    def answer(
        self, environ: Environ, start_response: StartResponse, custom: Custom, started: float
    ) -> Iterable[bytes]:
        """Send a custom answer after its delay (only this greenlet waits), and note it."""
        answer = custom.answer
        recorder = recorder_of(self.app)
        if answer.delay_ms:
            # Noted now (unless stored already), so the capture shows its answer while it
            # waits; when it went out, after.
            if not custom.stored:
                recorder.note(custom.note(None))
            self._sleep(answer.delay_ms / 1000)
            recorder.note(custom.sent(clock.now()))
        elif not custom.stored:
            recorder.note(custom.note(clock.now()))
        if not answer.hang_up:
            start_response(answer.status_line, custom.headers())
            self._done(environ, custom.bin_id, answer.status, started)
            return [] if environ.get("REQUEST_METHOD") == "HEAD" else [answer.body]
        hang_up = environ.get(HANG_UP)
        if hang_up is not None:
            hang_up()
            self._done(environ, custom.bin_id, 0, started)  # 0: no answer, as in its summary
            return []
        # A server without the hang-up hook (tests, another WSGI server): say it instead.
        self._done(environ, custom.bin_id, 504, started)
        text = "failing on purpose: this bin's response times out and closes the connection"
        return _plain(environ, start_response, 504, text, {})

    def _done(self, environ: Environ, bin_id: str, status: int, started: float) -> None:
        """Log the capture's line, and count it when metrics are on."""
        seconds = time.perf_counter() - started
        logs.capture(
            log,
            bin_id,
            environ.get("REQUEST_METHOD", ""),
            environ.get("RAW_URI") or environ.get("PATH_INFO", ""),
            environ.get("CONTENT_LENGTH"),
            status,
            seconds,
        )
        if self.metrics is not None:
            self.metrics.capture(status, environ.get(RECEIVED, 0), seconds)

    def _sleep(self, seconds: float) -> None:
        if self._gevent:
            import gevent

            gevent.sleep(seconds)  # this greenlet alone: the recorder and other captures go on
        else:
            time.sleep(seconds)

    def forward(self, recorded: Recorded, snap: Snapshot) -> None:
        """Hand the stored tries to this process's forwarder; without one (not a server's
        worker) they wait in the table for one."""
        forwarder = forwarder_of(self.app)
        if forwarder is not None:
            forwarder.offer(
                recorded, snap.method, snap.path, snap.query_string, snap.headers, snap.body
            )

    def unavailable(self) -> Refused:
        """Never answer 2xx for a capture that was not stored: tell the sender to come back, and
        tell open pages (their storage banner)."""
        retry = self.config["HOOKSCOPE_RETRY_AFTER_SECONDS"]
        live.publish_storage_status(False, retry)
        return Refused(
            503,
            "storage is unavailable; nothing was stored, retry later",
            reason="storage_unavailable",
            **{"Retry-After": str(retry)},
        )


def _plain(
    environ: Environ, start_response: StartResponse, status: int, text: str, headers: dict[str, str]
) -> Iterable[bytes]:
    """Answer in the gate's own plain text (the default "ok", refusals)."""
    body = (text + "\n").encode()
    response_headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        *_SECURITY_HEADERS,
        *headers.items(),
    ]
    start_response(f"{status} {_REASONS.get(status, '')}".rstrip(), response_headers)
    return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]


def _bin_of(path: str) -> str:
    return path[len(paths.CAPTURE_PREFIX) :].partition("/")[0]


def init_app(app: Flask) -> None:
    """Put the capture gate in front of the Flask app."""
    app.wsgi_app = app.extensions[EXTENSION] = CaptureGate(app, app.wsgi_app)
