"""Read a capture's body within its size, time and memory limits; never a truncated copy.

What a sender is told when its body is refused: 413 past HOOKSCOPE_MAX_BODY_BYTES (naming it)
or past the bin's byte budget (its max_bytes), 408 past HOOKSCOPE_BODY_TIMEOUT_SECONDS, 400 when
the body ends before its declared length or its last chunk, 503 with Retry-After when the
process already holds HOOKSCOPE_MAX_BODY_BYTES_IN_FLIGHT of bodies (app/store/inflight.py).
Nothing is stored in any of these cases.

The buffer grows as the body arrives, never from what the sender declared: a connection that
declares 10 MiB and sends nothing holds nothing. Growing a bytearray reallocates it, and glibc
moves a block of 1 MiB or more (every big body's, app/runtime/serving.py) by remapping its pages,
not by copying them, so a big body is still held about once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.domain import budgets
from app.ingest.environ import BODY_TIMER, abandon
from app.store.inflight import Hold

# Bodies are read in pieces of up to this size (a read waits for its whole piece).
READ_CHUNK = 256 * 1024

Environ = dict[str, Any]


class Refused(Exception):
    """The capture is answered with ``status`` and ``text`` and nothing is stored.

    ``reason`` is what the bin's refusal counts file it under (app/domain/refusals.py).
    """

    def __init__(self, status: int, text: str, *, reason: str, **headers: str) -> None:
        super().__init__(text)
        self.status, self.text, self.headers = status, text, headers
        self.reason = reason


class BodyTimeout(Exception):
    """The body did not arrive within HOOKSCOPE_BODY_TIMEOUT_SECONDS."""


def read_body(
    environ: Environ,
    config: Mapping[str, Any],
    gevent: bool,
    hold: Hold,
    bin_max_bytes: int | None = None,
) -> bytes | bytearray:
    """Read the whole body, chunked or not, within the size, time and memory limits (``hold``
    counts its bytes as they arrive); never truncate.

    ``bin_max_bytes`` is the bin's byte budget: a body bigger than that can never be kept.
    """
    declared = content_length(environ)
    limit = config["HOOKSCOPE_MAX_BODY_BYTES"]
    for_bin = bin_max_bytes is not None and bin_max_bytes < limit
    if for_bin:
        limit = bin_max_bytes  # type: ignore[assignment]
    if declared is not None and declared > limit:
        raise too_large(environ, declared, limit, for_bin)
    if declared is not None and declared > hold.budget.free:
        raise busy(environ, config, hold)  # it could not fit: say so before it is sent
    stream = environ["wsgi.input"]
    timer = _body_timer(environ, config["HOOKSCOPE_BODY_TIMEOUT_SECONDS"]) if gevent else None
    try:
        if timer is not None:
            timer.start()
        try:
            if declared is not None:
                body = _read_exactly(stream, declared, hold)
            elif environ.get("wsgi.input_terminated"):
                body = _read_to_end(stream, limit + 1, hold)
                if len(body) > limit:
                    raise too_large(environ, None, limit, for_bin)
            else:
                body = b""  # no length and no chunking: HTTP says there is no body
        finally:
            if timer is not None:
                timer.cancel()
    except OverBudget:
        raise busy(environ, config, hold) from None
    except BodyTimeout:
        abandon(environ)
        raise Refused(
            408,
            f"the body did not arrive within {config['HOOKSCOPE_BODY_TIMEOUT_SECONDS']} s"
            " (HOOKSCOPE_BODY_TIMEOUT_SECONDS); nothing was stored",
            reason="body_timeout",
            Connection="close",
        ) from None
    except OSError:
        # The sender closed the connection (or broke the chunked framing) mid-body.
        abandon(environ)
        what = "its last chunk" if declared is None else f"its Content-Length ({declared} bytes)"
        raise Refused(
            400,
            f"the body ended before {what} arrived; nothing was stored",
            reason="body_incomplete",
        ) from None
    return body


class OverBudget(Exception):
    """The body's next bytes would pass HOOKSCOPE_MAX_BODY_BYTES_IN_FLIGHT."""


def busy(environ: Environ, config: Mapping[str, Any], hold: Hold) -> Refused:
    """Refuse a body the process has no room for now; the connection closes undrained."""
    hold.release()
    abandon(environ)
    return Refused(
        503,
        f"this server is holding as many body bytes as it takes at once"
        f" ({mib(hold.budget.cap)}, HOOKSCOPE_MAX_BODY_BYTES_IN_FLIGHT); nothing was stored,"
        " retry later",
        reason="bodies_in_flight",
        Connection="close",
        **{"Retry-After": str(config["HOOKSCOPE_RETRY_AFTER_SECONDS"])},
    )


def _body_timer(environ: Environ, seconds: int) -> Any:
    """The gevent timer that bounds reading this body (HOOKSCOPE_BODY_TIMEOUT_SECONDS)."""
    timer_for = environ.get(BODY_TIMER)
    if timer_for is not None:
        return timer_for(seconds, BodyTimeout)  # the connection's own, reused (the server's)
    import gevent

    return gevent.Timeout(seconds, BodyTimeout)


def too_large(environ: Environ, declared: int | None, limit: int, for_bin: bool = False) -> Refused:
    """Say plainly what was refused and which setting changes the limit."""
    if for_bin:
        text = budgets.too_big_for_bin(declared, limit, "body").message
        reason = "bin_budget"
    else:
        size = (
            f"body is {mib(declared)}" if declared is not None else "body is larger than the limit"
        )
        text = f"{size}; this server accepts up to {mib(limit)} (HOOKSCOPE_MAX_BODY_BYTES)"
        reason = "body_too_large"
    # Past twice the limit (or with no end declared), stop reading: draining a huge or endless
    # upload would tie the connection up for as long as the sender keeps sending.
    if declared is None or declared > 2 * limit:
        abandon(environ)
        return Refused(413, text, reason=reason, Connection="close")
    return Refused(413, text, reason=reason)


def unread(environ: Environ, status: int, text: str, reason: str) -> Refused:
    """Refuse a capture before reading its body: a small body is drained as usual, anything
    bigger (or of unknown length) is not read at all, and the connection closes."""
    declared = content_length(environ)
    if declared is None and "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        declared = 0
    if declared is None or declared > READ_CHUNK:
        abandon(environ)
        return Refused(status, text, reason=reason, Connection="close")
    return Refused(status, text, reason=reason)


def content_length(environ: Environ) -> int | None:
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return None  # chunked framing overrides any Content-Length (RFC 9112, 6.3)
    raw = environ.get("CONTENT_LENGTH")
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise Refused(
            400, f"Content-Length {raw[:40]!r} is not a number", reason="bad_length"
        ) from None
    if value < 0:
        raise Refused(400, "Content-Length is negative", reason="bad_length")
    return value


def _read_exactly(stream: Any, size: int, hold: Hold) -> bytes | bytearray:
    """Read ``size`` bytes into a buffer that grows as they arrive (module docstring)."""
    if size <= READ_CHUNK:
        data = stream.read(size) if size else b""
        if len(data) != size:
            raise OSError("the body ended early")
        _count(hold, size)
        return data
    buffer = bytearray()
    while len(buffer) < size:
        chunk = stream.read(min(READ_CHUNK, size - len(buffer)))
        if not chunk:
            raise OSError("the body ended early")
        _count(hold, len(chunk))
        buffer += chunk
    return buffer


def _read_to_end(stream: Any, cap: int, hold: Hold) -> bytes | bytearray:
    """Read a self-terminating (chunked) body, stopping once it passes ``cap`` bytes."""
    buffer = bytearray()
    while len(buffer) < cap:
        chunk = stream.read(min(READ_CHUNK, cap - len(buffer)))
        if not chunk:
            break
        _count(hold, len(chunk))
        buffer += chunk
    return buffer


def _count(hold: Hold, n: int) -> None:
    if not hold.take(n):
        raise OverBudget


def mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB" if n >= 1024 * 1024 else f"{n} bytes"
