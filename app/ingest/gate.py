"""The public capture URL: accept any method on ``/h/<bin>`` and below, store it, tell watchers.

Captures do not go through Flask. They need none of what Flask does for pages (routing, sessions,
CSRF, templates, error pages), and at thousands of captures a second that work was most of the
cost; so a small WSGI layer in front of the Flask app takes every request under ``/h/`` and passes
everything else on. What it does, in order: find the bin's settings (404), apply the flood limits
(429), read the body within its size, time and memory limits (413, 408, 400 for a body cut short,
503 past the body bytes a process holds at once), store it through the group-commit writer (503
when storage fails, so a sender is never told "ok" for something not stored), publish it to live
watchers, answer, and log one structured line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from sqlalchemy.exc import DBAPIError

from app import live, logs
from app.domain import clock, keys, paths
from app.domain.capture import Snapshot
from app.domain.refusals import CAPTURED, PROCESS_ONLY
from app.extensions import under_gevent
from app.ingest import snapshot
from app.ingest.body import Environ, Refused, read_body
from app.ingest.limits import CaptureLimits
from app.ingest.tally import tally_of
from app.logs import printable
from app.outbound.bounds import forwarder_of
from app.store.batch import Recorded
from app.store.errors import StorageUnavailable
from app.store.recorder import recorder_of
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
}

StartResponse = Callable[..., Any]


class CaptureGate:
    """WSGI layer in front of the Flask app: captures here, everything else to Flask."""

    def __init__(self, app: Flask, downstream: Callable[[Environ, StartResponse], Iterable[bytes]]):
        self.app = app
        self.config = app.config
        self.downstream = downstream
        self.limits = CaptureLimits(app)
        self.tally = tally_of(app)
        self.settings = cache_of(app)
        self._gevent = under_gevent()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if not environ.get("PATH_INFO", "").startswith(paths.CAPTURE_PREFIX):
            return self.downstream(environ, start_response)
        started = time.perf_counter()
        bin_id = environ["PATH_INFO"][len(paths.CAPTURE_PREFIX) :].partition("/")[0]
        try:
            status, text, headers = self.capture(environ, bin_id)
        except Refused as refusal:
            status, text, headers = refusal.status, refusal.text, refusal.headers
            # Never silent: the bin's page and API show what was refused and why. (A 503 can
            # come before the bin is known: an id no bin could have is not kept per bin.)
            if refusal.reason in PROCESS_ONLY or not keys.ID_PATTERN.fullmatch(bin_id):
                self.tally.count_process(refusal.reason)
            else:
                self.tally.count(bin_id, refusal.reason)
        body = (text + "\n").encode()
        logs.info(
            log,
            "capture bin=%s method=%s path=%s size=%s status=%d ms=%.1f",
            printable(bin_id),
            printable(environ.get("REQUEST_METHOD", "")),
            printable(environ.get("RAW_URI") or environ.get("PATH_INFO", "")),
            environ.get("CONTENT_LENGTH") or "-",
            status,
            (time.perf_counter() - started) * 1000,
        )
        response_headers = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            *_SECURITY_HEADERS,
            *headers.items(),
        ]
        start_response(f"{status} {_REASONS.get(status, '')}".rstrip(), response_headers)
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

    def capture(self, environ: Environ, bin_id: str) -> tuple[int, str, dict[str, str]]:
        """Store what arrived and tell anyone watching; answer what the sender should hear."""
        received_at = clock.now()
        try:
            settings = self.settings.get(bin_id)
        except DBAPIError as err:
            log.error("capture failed: the database is unavailable: %s", err)
            raise self.unavailable() from None
        if settings is None:
            raise Refused(404, "no such bin", reason="no_such_bin")
        spent = self.limits.check(environ, bin_id)
        if spent is not None:
            raise Refused(
                429, spent.message, reason=spent.reason, **{"Retry-After": str(spent.retry_after)}
            )
        recorder = recorder_of(self.app)
        hold = recorder.budget.hold()  # the body's bytes, from the first read to the commit
        try:
            body = read_body(environ, self.config, self._gevent, hold)
            snap = snapshot.take(
                environ,
                body,
                mount=environ.get("SCRIPT_NAME", "") + paths.capture_path(bin_id),
                received_at=received_at,
            )
            recorded = recorder.record(bin_id, snap, environ.get("HTTP_AUTHORIZATION"), hold)
        except StorageUnavailable:
            raise self.unavailable() from None
        finally:
            hold.release()
        live.publish_storage_status(True, self.config["HOOKSCOPE_RETRY_AFTER_SECONDS"])
        if recorded is None:
            self.settings.forget(bin_id)
            raise Refused(404, "no such bin", reason="no_such_bin")
        self.settings.offer(recorded.settings)
        self.tally.count(bin_id, CAPTURED, len(body))
        live.publish_capture(recorded)
        if recorded.forwards:
            self.forward(recorded, snap)
        seq = {"X-Hookscope-Seq": str(recorded.summary["seq"])}
        if not recorded.allowed:
            self.tally.count(bin_id, "unauthorized")
            kind = recorded.settings.ingest_auth
            challenge = 'Basic realm="hookscope"' if kind == "basic" else "Bearer"
            return 401, "this bin requires authentication", {"WWW-Authenticate": challenge, **seq}
        return 200, "ok", seq

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


def init_app(app: Flask) -> None:
    """Put the capture gate in front of the Flask app."""
    app.wsgi_app = app.extensions[EXTENSION] = CaptureGate(app, app.wsgi_app)
