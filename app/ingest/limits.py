"""Flood limits on the capture URL: per sender address, per bin, and for the whole server.

Each is a token bucket (app/ingest/buckets.py): HOOKSCOPE_RATE_LIMIT_PER_ADDRESS,
HOOKSCOPE_RATE_LIMIT_PER_BIN and HOOKSCOPE_RATE_LIMIT_GLOBAL say a rate and a burst, ``1200/minute
burst 6000``. Counted in this process's memory, or in Redis (REDIS_URL) when several processes
share the work. Captures bypass Flask, so they are counted here rather than by a route decorator.

A sender is its address, an IPv6 one by its /64 (app/domain/senders.py). A request for a bin
that does not exist takes from its sender's bucket and the server's, so a flood of made-up bin
ids ends in 429 like any other flood; it takes from no bin's bucket (made-up ids would only fill
the buckets' memory).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from flask import Flask

from app.config_parsers import Rate, parse_capture_rate
from app.domain.senders import sender_key
from app.ingest.buckets import buckets_for


@dataclass(frozen=True, slots=True)
class Rule:
    setting: str
    kind: str  # "address", "bin" or "global": what the bucket is kept for
    reason: str  # the refusal's reason, as counted (app/domain/refusals.py)
    rate: Rate


@dataclass(frozen=True, slots=True)
class Spent:
    """A limit that refused a capture: why, and how long until it would take one."""

    reason: str
    message: str
    retry_after: int


RULES = (
    ("HOOKSCOPE_RATE_LIMIT_PER_ADDRESS", "address", "rate_limit_address"),
    ("HOOKSCOPE_RATE_LIMIT_PER_BIN", "bin", "rate_limit_bin"),
    ("HOOKSCOPE_RATE_LIMIT_GLOBAL", "global", "rate_limit_global"),
)
WHO = {
    "address": "from this address (an IPv6 /64 counts as one)",
    "bin": "to this bin",
    "global": "from all senders together",
}
# A limit that refused a request for a bin that does not exist: counted per process only.
UNKNOWN_BIN_REASON = "rate_limit_unknown_bin"


class CaptureLimits:
    """The capture URL's flood limits, checked by the capture gate."""

    def __init__(self, app: Flask) -> None:
        enabled = app.config.get("RATELIMIT_ENABLED", True)
        self.rules = [
            Rule(setting, kind, reason, parse_capture_rate(app.config[setting]))
            for setting, kind, reason in RULES
            if enabled and app.config[setting]
        ]
        self.buckets = buckets_for(app.config["REDIS_URL"]) if self.rules else None

    def check(self, environ: dict[str, Any], bin_id: str | None) -> Spent | None:
        """Count this request against every limit, or against none when one is spent.

        ``bin_id`` None: the bin does not exist; only the sender's and the server's count.
        """
        if self.buckets is None:
            return None
        keys = {
            "address": sender_key(environ.get("REMOTE_ADDR")),
            "bin": bin_id,
            "global": "all",
        }
        rules = [rule for rule in self.rules if keys[rule.kind] is not None]
        if not rules:
            return None
        empty = self.buckets.take([(f"{rule.kind}:{keys[rule.kind]}", rule.rate) for rule in rules])
        if empty is None:
            return None
        rule = rules[empty.index]
        message = (
            f"too many requests {WHO[rule.kind]}: this server takes {rule.rate.text}"
            f" ({rule.setting}); nothing was stored"
        )
        reason = rule.reason if bin_id is not None else UNKNOWN_BIN_REASON
        return Spent(reason, message, max(1, math.ceil(empty.seconds)))
