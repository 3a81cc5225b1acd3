"""Failure rehearsal: whether this request fails on purpose. Pure; the count lives elsewhere.

``first`` needs to know how many requests came before this one, across every worker and host, so
the count cannot live in process memory: the gate increments a shared counter under
``counter_key`` (for example Redis ``INCR`` with an expiry, or a row) and passes the number of
earlier requests as ``attempt``. The key changes whenever the settings change, so a new rule
starts counting from zero. ``percent`` needs no count, only a random ``roll`` in [0, 1).
"""

from __future__ import annotations

import hashlib

from .spec import Failure
from .view import RequestView


def counter_key(failure: Failure, scope: str, view: RequestView) -> str | None:
    """Return the key to count requests under, or None when the failure needs no count.

    ``scope`` names the settings version and the response (the bin's or a rule's). With
    ``per_header`` each value of that header (a delivery id) counts apart, hashed so a hostile
    value cannot make the key long; requests without the header count together.
    """
    if failure.first is None:
        return None
    if failure.per_header is None:
        return f"{scope}:all"
    value = view.header(failure.per_header)
    if value is None:
        return f"{scope}:none"
    return f"{scope}:{hashlib.sha256(value.encode('utf-8')).hexdigest()[:32]}"


def should_fail(failure: Failure, attempt: int, roll: float) -> bool:
    """Decide: the first ``first`` attempts fail (0-based ``attempt``), or ``roll`` < percent."""
    if failure.first is not None:
        return attempt < failure.first
    assert failure.percent is not None  # noqa: S101 - parse.py sets one of the two
    return roll * 100 < failure.percent


def reason(failure: Failure, attempt: int) -> str:
    """Say plainly why this answer fails, for the sender and for the bin's page."""
    if failure.first is not None:
        per = f" with this {failure.per_header}" if failure.per_header else ""
        which = f"request {attempt + 1} of the first {failure.first}{per}"
    else:
        which = f"{failure.percent:g}% of requests, at random"
    outcome = "time out" if failure.timeout else f"get {failure.status}"
    return f"failing on purpose: {which} {outcome} (this bin's response settings)"
