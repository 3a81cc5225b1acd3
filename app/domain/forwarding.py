"""Auto-forward's rules: a bin's targets, which outcomes are tried again, and when. Pure.

A bin forwards every capture it accepts to each of its targets (``bins.forward_to``). Each try
is an attempt row; a try that failed in a way that may pass later is tried again after a delay
that doubles from HOOKSCOPE_FORWARD_RETRY_SECONDS, up to HOOKSCOPE_FORWARD_MAX_ATTEMPTS tries.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

MAX_TARGETS = 5
MAX_URL_CHARS = 2000
# The longest wait between two tries, however many came before.
MAX_DELAY_SECONDS = 3600
# Replays kept per request; past it the oldest finished ones go. Forwards are bounded by the
# bin's targets times HOOKSCOPE_FORWARD_MAX_ATTEMPTS.
MAX_REPLAYS_KEPT = 50
# Response bytes kept with an attempt; the rest is dropped and the attempt says so.
KEPT_RESPONSE_BYTES = 64 * 1024

# Failures that a later try may not meet: the network, the target's overload, its errors.
RETRIED_ERRORS = frozenset(
    {
        "dns_failed",
        "connect_failed",
        "connect_timeout",
        "tls_failed",
        "timeout",
        "connection_lost",
        "bad_response",
        "outbound_busy",
    }
)
RETRIED_STATUSES = frozenset({408, 425, 429})


class BadTargets(ValueError):
    """The targets cannot be kept; the message says why."""


def targets_of(stored: str | None) -> tuple[str, ...]:
    """Read a bin's ``forward_to`` column."""
    return tuple(json.loads(stored)) if stored else ()


def stored_targets(value: object) -> str | None:
    """Check the shape of a ``forward_to`` change and return the column's value."""
    if value is None or value == []:
        return None
    if (
        not isinstance(value, list)
        or len(value) > MAX_TARGETS
        or not all(isinstance(v, str) and 0 < len(v) <= MAX_URL_CHARS for v in value)
    ):
        raise BadTargets(
            f"forward_to must be a list of up to {MAX_TARGETS} URLs "
            f"(http:// or https://, at most {MAX_URL_CHARS} characters each), or null"
        )
    if len(set(value)) != len(value):
        raise BadTargets("forward_to lists the same URL twice")
    return json.dumps(value)


def succeeded(status: int | None) -> bool:
    """Tell whether the target took the delivery."""
    return status is not None and 200 <= status < 300


def retried(error: str | None, status: int | None) -> bool:
    """Tell whether an outcome is worth another try.

    Refusals (target_forbidden, bad_url, bad_request), redirects and the target's other 4xx
    answers would come out the same: the receiver said no, and a replay is one click away.
    """
    if error is not None:
        return error in RETRIED_ERRORS
    return status is not None and (status in RETRIED_STATUSES or status >= 500)


def retry_delay(try_number: int, base_seconds: int, max_attempts: int) -> float | None:
    """Seconds before the next try after try ``try_number`` failed; None: no more tries."""
    if try_number >= max_attempts:
        return None
    return float(min(base_seconds * 2 ** (try_number - 1), MAX_DELAY_SECONDS))


def lease_seconds(timeout: float) -> float:
    """How long a process holds a try it means to send: time for the call, and to spare."""
    return 2 * timeout + 5


def forward_url(target: str, path: str, query_string: str) -> str:
    """Join a target and a capture's path below the bin and query, as the relay does.

    ``https://x/hooks`` with a capture at ``/h/<bin>/stripe?a=1`` becomes
    ``https://x/hooks/stripe?a=1``; the target's own query comes first.
    """
    base, _, own_query = target.partition("?")
    url = base.rstrip("/") + path if path else base
    queries = [q for q in (own_query, query_string) if q]
    return url + ("?" + "&".join(queries) if queries else "")


def pairs(headers: Sequence[Sequence[str]]) -> list[list[str]]:
    """Headers as a JSON-friendly list of [name, value]."""
    return [[str(n), str(v)] for n, v in headers]
