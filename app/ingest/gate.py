"""The public capture URL: accept any method on ``/h/<bin>`` and below, store it, tell watchers.

Captures do not go through Flask. They need none of what Flask does for pages (routing, sessions,
CSRF, templates, error pages), and at thousands of captures a second that work was most of the
cost; so a small WSGI layer in front of the Flask app takes every request under ``/h/`` and passes
everything else on. What it does, in order: find the bin (404), apply the flood limits (429), read
the body within its size and time limits (413, 408, 400 for a body cut short), store it through
the group-commit writer (503 when storage fails, so a sender is never told "ok" for something not
stored), publish it to live watchers, answer, and log one structured line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from sqlalchemy.exc import DBAPIError

from app import live
from app.domain import clock
from app.extensions import under_gevent
from app.ingest import snapshot
from app.runtime import logs
from app.store import recorder as recording
from app.web import limits as ratelimits

MOUNT = "/h"
PREFIX = MOUNT + "/"
EXTENSION = "hookscope.capture"
log = logging.getLogger("hookscope.capture")
# Bodies are read in pieces of this size into a buffer sized from Content-Length.
READ_CHUNK = 256 * 1024
# A bin found in the database is believed to exist for this long without asking again; a capture
# for a bin deleted meanwhile still gets 404, from the writer.
KNOWN_BIN_SECONDS = 10.0
_SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
]

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


class Refused(Exception):
    """The capture is answered with ``status`` and ``text`` and nothing is stored."""

    def __init__(self, status: int, text: str, **headers: str) -> None:
        super().__init__(text)
        self.status, self.text, self.headers = status, text, headers


class BodyTimeout(Exception):
    """The body did not arrive within HOOKSCOPE_BODY_TIMEOUT_SECONDS."""


class CaptureGate:
    """WSGI layer in front of the Flask app: captures here, everything else to Flask."""

    def __init__(self, app: Flask, downstream: Callable[[Environ, StartResponse], Iterable[bytes]]):
        self.app = app
        self.config = app.config
        self.downstream = downstream
        self.limits = ratelimits.CaptureLimits(app)
        self._known: dict[str, float] = {}
        self._recorder: recording.Recorder | None = None
        self._gevent = under_gevent()

    @property
    def recorder(self) -> recording.Recorder:
        # Built on first use, in the worker process (gunicorn builds apps in the master too).
        if self._recorder is None:
            with self.app.app_context():
                from app.extensions import db

                store = recording.Store(db.engine, self.config["HOOKSCOPE_SQLITE_BUSY_TIMEOUT_MS"])
            self._recorder = recording.Recorder(store)
        return self._recorder

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if not environ.get("PATH_INFO", "").startswith(PREFIX):
            return self.downstream(environ, start_response)
        started = time.perf_counter()
        bin_id = environ["PATH_INFO"][len(PREFIX) :].partition("/")[0]
        try:
            status, text, headers = self.capture(environ, bin_id)
        except Refused as refusal:
            status, text, headers = refusal.status, refusal.text, refusal.headers
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
        if not self._exists(bin_id):
            raise Refused(404, "no such bin")
        spent = self.limits.check(environ, bin_id)
        if spent is not None:
            message, retry = spent
            raise Refused(429, message, **{"Retry-After": str(retry)})
        body = self.read_body(environ)
        snap = snapshot.take(
            environ,
            body,
            mount=f"{environ.get('SCRIPT_NAME', '')}{MOUNT}/{bin_id}",
            received_at=received_at,
        )
        try:
            recorded = self.recorder.record(bin_id, snap, environ.get("HTTP_AUTHORIZATION"))
        except recording.StorageUnavailable:
            raise self.unavailable() from None
        live.publish_storage_status(True, self.config["HOOKSCOPE_RETRY_AFTER_SECONDS"])
        if recorded is None:
            self._known.pop(bin_id, None)
            raise Refused(404, "no such bin")
        live.publish_capture(recorded)
        seq = {"X-Hookscope-Seq": str(recorded.summary["seq"])}
        if not recorded.allowed:
            challenge = 'Basic realm="hookscope"' if recorded.ingest_auth == "basic" else "Bearer"
            return 401, "this bin requires authentication", {"WWW-Authenticate": challenge, **seq}
        return 200, "ok", seq

    def _exists(self, bin_id: str) -> bool:
        now = time.monotonic()
        if self._known.get(bin_id, 0.0) > now:
            return True
        try:
            with self.app.app_context():
                found = recording.lookup(bin_id) is not None
        except DBAPIError as err:
            log.error("capture failed: the database is unavailable: %s", err)
            raise self.unavailable() from None
        if found:
            if len(self._known) > 10_000:
                self._known.clear()
            self._known[bin_id] = now + KNOWN_BIN_SECONDS
        return found

    def unavailable(self) -> Refused:
        """Never answer 2xx for a capture that was not stored: tell the sender to come back, and
        tell open pages (their storage banner)."""
        retry = self.config["HOOKSCOPE_RETRY_AFTER_SECONDS"]
        live.publish_storage_status(False, retry)
        return Refused(
            503,
            "storage is unavailable; nothing was stored, retry later",
            **{"Retry-After": str(retry)},
        )

    def read_body(self, environ: Environ) -> bytes | bytearray:
        """Read the whole body, chunked or not, within the size and time limits; never truncate."""
        declared = _content_length(environ)
        limit = self.config["HOOKSCOPE_MAX_BODY_BYTES"]
        if declared is not None and declared > limit:
            raise self.too_large(environ, declared)
        stream = environ["wsgi.input"]
        timer = self._body_timer(environ)
        try:
            if timer is not None:
                timer.start()
            try:
                if declared is not None:
                    body = _read_exactly(stream, declared)
                elif environ.get("wsgi.input_terminated"):
                    body = _read_to_end(stream, limit + 1)
                    if len(body) > limit:
                        raise self.too_large(environ, None)
                else:
                    body = b""  # no length and no chunking: HTTP says there is no body
            finally:
                if timer is not None:
                    timer.cancel()
        except BodyTimeout:
            _abandon(environ)
            raise Refused(
                408,
                f"the body did not arrive within {self.config['HOOKSCOPE_BODY_TIMEOUT_SECONDS']} s"
                " (HOOKSCOPE_BODY_TIMEOUT_SECONDS); nothing was stored",
                Connection="close",
            ) from None
        except OSError:
            # The sender closed the connection (or broke the chunked framing) mid-body.
            _abandon(environ)
            what = (
                "its last chunk" if declared is None else f"its Content-Length ({declared} bytes)"
            )
            raise Refused(
                400, f"the body ended before {what} arrived; nothing was stored"
            ) from None
        return body

    def _body_timer(self, environ: Environ) -> Any:
        """The gevent timer that bounds reading this body (HOOKSCOPE_BODY_TIMEOUT_SECONDS)."""
        if not self._gevent:
            return None
        seconds = self.config["HOOKSCOPE_BODY_TIMEOUT_SECONDS"]
        timer_for = environ.get(snapshot.BODY_TIMER)
        if timer_for is not None:
            return timer_for(seconds, BodyTimeout)  # the connection's own, reused (app/server.py)
        import gevent

        return gevent.Timeout(seconds, BodyTimeout)

    def too_large(self, environ: Environ, declared: int | None) -> Refused:
        """Say plainly what was refused and which setting changes the limit."""
        limit = self.config["HOOKSCOPE_MAX_BODY_BYTES"]
        size = (
            f"body is {mib(declared)}" if declared is not None else "body is larger than the limit"
        )
        reason = f"{size}; this server accepts up to {mib(limit)} (HOOKSCOPE_MAX_BODY_BYTES)"
        # Past twice the limit (or with no end declared), stop reading: draining a huge or endless
        # upload would tie the connection up for as long as the sender keeps sending.
        if declared is None or declared > 2 * limit:
            _abandon(environ)
            return Refused(413, reason, Connection="close")
        return Refused(413, reason)


def _content_length(environ: Environ) -> int | None:
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return None  # chunked framing overrides any Content-Length (RFC 9112, 6.3)
    raw = environ.get("CONTENT_LENGTH")
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise Refused(400, f"Content-Length {raw[:40]!r} is not a number") from None
    if value < 0:
        raise Refused(400, "Content-Length is negative")
    return value


def _read_exactly(stream: Any, size: int) -> bytes | bytearray:
    """Read ``size`` bytes into one buffer allocated up front (no copies of big bodies)."""
    if size <= READ_CHUNK:
        data = stream.read(size) if size else b""
        if len(data) != size:
            raise OSError("the body ended early")
        return data
    buffer = bytearray(size)
    view = memoryview(buffer)
    filled = 0
    while filled < size:
        chunk = stream.read(min(READ_CHUNK, size - filled))
        if not chunk:
            raise OSError("the body ended early")
        view[filled : filled + len(chunk)] = chunk
        filled += len(chunk)
    view.release()
    return buffer


def _read_to_end(stream: Any, cap: int) -> bytes | bytearray:
    """Read a self-terminating (chunked) body, stopping once it passes ``cap`` bytes."""
    buffer = bytearray()
    while len(buffer) < cap:
        chunk = stream.read(min(READ_CHUNK, cap - len(buffer)))
        if not chunk:
            break
        buffer += chunk
    return buffer


def _abandon(environ: Environ) -> None:
    """Close the connection after the answer instead of draining the rest of the body."""
    abandon = environ.get(snapshot.ABANDON)
    if abandon is not None:
        abandon()


def printable(text: str, limit: int = 300) -> str:
    """Escape what a sender controls for a log line: no CR/LF or control characters, bounded."""
    if len(text) <= limit and text.isascii() and text.isprintable() and "\\" not in text:
        return text  # nothing to escape: the common case, checked in C
    escaped = text.encode("unicode_escape").decode("ascii")
    return escaped if len(escaped) <= limit else escaped[:limit] + "..."


def mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB" if n >= 1024 * 1024 else f"{n} bytes"


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


def init_app(app: Flask) -> None:
    """Put the capture gate in front of the Flask app."""
    app.wsgi_app = app.extensions[EXTENSION] = CaptureGate(app, app.wsgi_app)


def recorder_of(app: Flask) -> recording.Recorder:
    """The app's capture writer (one per process)."""
    return app.extensions[EXTENSION].recorder
