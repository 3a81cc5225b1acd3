"""Send one capture to one target, judge the attempt, and say how it went.

What goes out is what replay and auto-forward send (app/outbound/outgoing.py, wire.py): the
method, the path below the bin after the target's path, the query, every header in order with
duplicates, the body byte for byte; Host becomes the target's, Content-Length is written from
the body (the same number) and a chunked capture goes chunked, as one chunk; the hop-by-hop
fields (Connection and those it names, Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade),
which describe the sender's connection to Hookscope and not the request, are dropped.

Delivered means the target answered, so it has the capture: any status counts, except the ones
that mean "not now" (408, 425, 429, 502, 503, 504: a dev server restarting behind its proxy, a
rate limit). Those, and no answer at all (refused, reset, timed out), are retried with
exponential backoff, for as long as the relay runs: captures wait, in order, and none is lost.
With --require-2xx only a 2xx counts, as providers judge it: fix the handler and the capture
comes again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.cli.feed import Capture
from app.cli.lines import shown
from app.domain.forwarding import forward_url
from app.outbound import client, guard
from app.outbound.outgoing import capture_headers
from app.outbound.pool import Pool

DELIVERED, RETRY, NOT_SENT = "delivered", "retrying", "not_sent"
RETRY_STATUSES = frozenset({408, 425, 429, 502, 503, 504})
# Found before a byte goes out: the same capture would fail the same way every time.
NOT_SENDABLE = frozenset({"bad_url", "bad_request"})
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0


def verdict(status: int | None, error: str | None, require_2xx: bool) -> str:
    """Judge one attempt: delivered, retrying, or not sent (it never can be)."""
    if error in NOT_SENDABLE:
        return NOT_SENT
    if status is None:
        return RETRY
    if 200 <= status < 300:
        return DELIVERED
    if require_2xx or status in RETRY_STATUSES:
        return RETRY
    return DELIVERED


def backoff(attempt: int, headers: Sequence[Sequence[str]] = ()) -> float:
    """Seconds before the next attempt: doubling from 0.5 s to 30 s, or the target's Retry-After."""
    wait = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (attempt - 1))
    asked = next((v.strip() for n, v in headers if n.lower() == "retry-after"), "")
    if asked.isdigit():
        wait = max(wait, min(BACKOFF_MAX, float(asked)))
    return wait


def send(
    capture: Capture, target: str, limits: client.Limits, pool: Pool | None = None
) -> client.Result:
    """Send the capture to the target as it came (this module's docstring says what changes)."""
    if "#" in capture.path or "#" in capture.query_string:
        # A URL would end at "#", and the rest would silently not be sent.
        return client.Result(
            "bad_url", "its path holds '#', which no request line can carry", target
        )
    url = forward_url(target, capture.path, capture.query_string)
    headers = capture_headers(capture.headers)
    # The relay runs on the user's machine, sending where the user says (localhost above all):
    # the server's address guard is for the server's outbound calls, not for this.
    return client.send(
        capture.method,
        url,
        headers,
        capture.body,
        allow=guard.UNRESTRICTED,
        limits=limits,
        pool=pool,
    )


def record(
    capture: Capture,
    target: str,
    result: client.Result,
    outcome: str,
    attempt: int,
    retry_in: float | None,
    waiting: int,
) -> dict[str, Any]:
    """The --json line of one attempt."""
    return {
        "seq": capture.seq,
        "method": capture.method,
        "path": capture.path,
        "query_string": capture.query_string,
        "target": target,
        "url": result.url,
        "outcome": outcome,
        "status": result.status,
        "latency_ms": result.timings.total_ms if result.error is None else None,
        "attempt": attempt,
        "error": result.error,
        "message": result.message or None,
        "retry_in_s": retry_in,
        "waiting": waiting,
    }


def text(fields: dict[str, Any], label: str = "") -> str:
    """The human line of one attempt, from its --json record."""
    shown_request = request_line(fields["method"], fields["path"], fields["query_string"])
    head = f"#{fields['seq']} {shown_request}"
    head += f" -> {label} " if label else " -> "
    if fields["status"] is not None:
        said = f"{fields['status']} in {fields['latency_ms']:.1f} ms"
    else:
        said = f"{fields['error']}: {fields['message']}"
    if fields["outcome"] == NOT_SENT:
        return f"{head}not sent: {fields['message']}"
    if fields["outcome"] == RETRY:
        return (
            f"{head}{said}; retrying in {fields['retry_in_s']:g} s "
            f"(attempt {fields['attempt']}, {fields['waiting']} waiting behind it)"
        )
    again = f" (attempt {fields['attempt']})" if fields["attempt"] > 1 else ""
    return f"{head}{said}{again}"


def request_line(method: str, path: str, query: str) -> str:
    """Show a capture's method, path and query on one line, escaped."""
    return shown(f"{method} {path or '/'}{'?' + query if query else ''}")
