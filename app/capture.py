"""The public capture URL: accept any method on ``/h/<bin>`` and below, store it, tell watchers."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, current_app, request
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.routing import PathConverter, Rule
from werkzeug.wsgi import get_content_length, get_input_stream

from . import clock, live, recording, snapshot

MOUNT = "/h"
log = logging.getLogger("hookscope.capture")


class TargetConverter(PathConverter):
    """Match everything after ``/h/``, empty segments and trailing slashes included."""

    regex = ".*"
    part_isolating = False


def init_app(app: Flask) -> None:
    """Route every method, including OPTIONS and unknown ones, to ``receive``."""
    app.url_map.converters["target"] = TargetConverter
    # Built as a bare Rule: methods=None matches any method, and without
    # provide_automatic_options Flask does not answer OPTIONS by itself.
    app.url_map.add(
        Rule(f"{MOUNT}/<target:target>", endpoint="capture.receive", merge_slashes=False)
    )
    app.view_functions["capture.receive"] = receive


def _plain(text: str, status: int, **headers: str) -> Response:
    return Response(text + "\n", status, mimetype="text/plain", headers=headers)


def read_body(environ: dict, limit: int) -> bytes:
    """Read the whole body, chunked or not, refusing (never truncating) one over ``limit``."""
    # werkzeug refuses a Content-Length over its maximum, but a chunked body is only cut off at
    # it. Allow one byte more and check: a body that reaches it is over the limit.
    stream = get_input_stream(environ, safe_fallback=False, max_content_length=limit + 1)
    body = stream.read()
    if len(body) > limit:
        raise RequestEntityTooLarge()
    # A server that terminates the input itself (gunicorn) ends it early, without an error, when
    # the sender closes before Content-Length bytes: that body is cut short, not complete.
    declared = get_content_length(environ)
    if declared is not None and len(body) != declared:
        raise ClientDisconnected()
    return body


def too_large(declared: int | None, limit: int) -> Response:
    """Say plainly what was refused and which setting changes the limit."""
    size = f"body is {mib(declared)}" if declared is not None else "body is larger than the limit"
    reason = f"{size}; this server accepts up to {mib(limit)} (HOOKSCOPE_MAX_BODY_BYTES)"
    # Past twice the limit (or with no end declared), stop reading: draining a huge or endless
    # upload would tie the worker up for as long as the sender keeps sending.
    if declared is None or declared > 2 * limit:
        close = getattr(request.environ.get("wsgi.input"), snapshot.CLOSE_CONNECTION_ATTR, None)
        if close is not None:
            close()
        return _plain(reason, 413, Connection="close")
    return _plain(reason, 413)


def mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB" if n >= 1024 * 1024 else f"{n} bytes"


def receive(target: str) -> Response:
    """Store what arrived, tell anyone watching, and log one line about it."""
    started = time.perf_counter()
    bin_id = target.partition("/")[0]
    try:
        response = _receive(bin_id)
    except DBAPIError:
        # Never answer 2xx for a capture that was not stored: tell the sender to come back.
        log.exception("capture failed: the database is unavailable")
        retry = str(current_app.config["HOOKSCOPE_RETRY_AFTER_SECONDS"])
        response = _plain(
            "storage is unavailable; nothing was stored, retry later", 503, **{"Retry-After": retry}
        )
    log.info(
        "capture bin=%s method=%s path=%s size=%s status=%d ms=%.1f",
        printable(bin_id),
        printable(request.method),
        printable(request.environ.get("RAW_URI") or request.path),
        request.content_length if request.content_length is not None else "-",
        response.status_code,
        (time.perf_counter() - started) * 1000,
    )
    return response


def printable(text: str, limit: int = 300) -> str:
    """Escape what a sender controls for a log line: no CR/LF or control characters, bounded."""
    escaped = text.encode("unicode_escape").decode("ascii")
    return escaped if len(escaped) <= limit else escaped[:limit] + "..."


def _receive(bin_id: str) -> Response:
    received_at = clock.now()
    target = recording.lookup(bin_id)
    if target is None:
        return _plain("no such bin", 404)
    limit = current_app.config["HOOKSCOPE_MAX_BODY_BYTES"]
    try:
        body = read_body(request.environ, limit)
    except RequestEntityTooLarge:
        return too_large(get_content_length(request.environ), limit)
    except ClientDisconnected:
        declared = get_content_length(request.environ)
        if declared is None:
            return _plain("the body ended before its last chunk arrived; nothing was stored", 400)
        return _plain(
            f"the body ended before its Content-Length ({declared} bytes) arrived;"
            " nothing was stored",
            400,
        )
    allowed = target.allows(request.headers.get("Authorization"))
    snap = snapshot.take(
        request.environ,
        body,
        mount=f"{request.script_root}{MOUNT}/{bin_id}",
        received_at=received_at,
    )
    recorded = recording.record(bin_id, snap, status=200 if allowed else 401, rejected=not allowed)
    if recorded is None:
        return _plain("no such bin", 404)
    live.publish_capture(recorded)
    # Let other connections run: on a busy keep-alive connection gevent would otherwise serve
    # its next request without switching, and the rest of the senders wait seconds.
    live.yield_now()
    seq = {"X-Hookscope-Seq": str(recorded.summary["seq"])}
    if not allowed:
        challenge = 'Basic realm="hookscope"' if target.ingest_auth == "basic" else "Bearer"
        return _plain(
            "this bin requires authentication", 401, **{"WWW-Authenticate": challenge}, **seq
        )
    return _plain("ok", 200, **seq)
