"""Flood limits on the capture URL: captures per sender address and per bin.

Each is a token bucket (app/ingest/buckets.py): HOOKSCOPE_RATE_LIMIT_PER_ADDRESS and
HOOKSCOPE_RATE_LIMIT_PER_BIN say a rate and a burst, ``1200/minute burst 6000``. Counted in this
process's memory, or in Redis (REDIS_URL) when several processes share the work. Captures bypass
Flask, so they are counted here rather than by a route decorator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from flask import Flask

from app.config import Rate, parse_capture_rate
from app.ingest.buckets import buckets_for


@dataclass(frozen=True, slots=True)
class Rule:
    setting: str
    kind: str  # "address" or "bin": what the bucket is kept for
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
)


class CaptureLimits:
    """The per-address and per-bin capture limits, checked by the capture gate."""

    def __init__(self, app: Flask) -> None:
        enabled = app.config.get("RATELIMIT_ENABLED", True)
        self.rules = [
            Rule(setting, kind, reason, parse_capture_rate(app.config[setting]))
            for setting, kind, reason in RULES
            if enabled and app.config[setting]
        ]
        self.buckets = buckets_for(app.config["REDIS_URL"]) if self.rules else None

    def check(self, environ: dict[str, Any], bin_id: str) -> Spent | None:
        """Count this capture against every limit, or against none when one is spent."""
        if self.buckets is None:
            return None
        address = environ.get("REMOTE_ADDR") or "-"
        wanted = [
            (f"{rule.kind}:{address if rule.kind == 'address' else bin_id}", rule.rate)
            for rule in self.rules
        ]
        empty = self.buckets.take(wanted)
        if empty is None:
            return None
        rule = self.rules[empty.index]
        message = (
            f"too many requests {'from this address' if rule.kind == 'address' else 'to this bin'}:"
            f" this server takes {rule.rate.text} ({rule.setting}); nothing was stored"
        )
        return Spent(rule.reason, message, max(1, math.ceil(empty.seconds)))
