"""Flood limits on the capture URL: per sender, per bin, and for the whole server.

Counted with the app's flask-limiter storage and strategy (app/web/limits.py makes the limiter):
in memory for one process, in Redis (REDIS_URL) when several share the work. Captures bypass
Flask, so they are counted here rather than by a route decorator.

A sender is its address, an IPv6 one by its /64 (app/domain/senders.py). Every request to the
capture URL counts against its sender's limit and the server's ceiling before its bin is looked
up, so a flood of requests for bins that do not exist is refused like any other; the per-bin
limit counts only bins that exist (counting made-up ids would only fill the counters' memory).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import limits
from flask import Flask

from app.domain.senders import sender_key
from app.extensions import LIMITER


@dataclass(frozen=True)
class Rule:
    setting: str
    prefix: str  # the counters' namespace in the limiter's storage
    what: str  # what is counted, for the refusal's message


SENDER_RULES = (
    Rule("HOOKSCOPE_RATE_LIMIT_PER_ADDRESS", "capture-address", "from one address (an IPv6 /64)"),
    Rule("HOOKSCOPE_RATE_LIMIT_GLOBAL", "capture-global", "from all senders together"),
)
BIN_RULES = (Rule("HOOKSCOPE_RATE_LIMIT_PER_BIN", "capture-bin", "into one bin"),)
Spent = tuple[str, int]  # the refusal's message, and the seconds to wait


class CaptureLimits:
    """The capture URL's flood limits, checked by the capture gate."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        enabled = app.config.get("RATELIMIT_ENABLED", True)

        def parsed(rules: tuple[Rule, ...]) -> list[tuple[Any, Rule]]:
            chosen = [rule for rule in rules if enabled and app.config[rule.setting]]
            return [(limits.parse(app.config[rule.setting]), rule) for rule in chosen]

        self.sender_rules = parsed(SENDER_RULES)
        self.bin_rules = parsed(BIN_RULES)

    def check_sender(self, environ: dict[str, Any]) -> Spent | None:
        """Count a request to the capture URL, whatever bin it names, against its sender's
        limit and the server's; when one is spent, say which."""
        if not self.sender_rules:
            return None
        sender = sender_key(environ.get("REMOTE_ADDR"))
        return self._hit(self.sender_rules, {"capture-address": sender, "capture-global": "all"})

    def check_bin(self, bin_id: str) -> Spent | None:
        """Count a capture into an existing bin; when the bin's limit is spent, say so."""
        if not self.bin_rules:
            return None
        return self._hit(self.bin_rules, {"capture-bin": bin_id})

    def _hit(self, rules: list[tuple[Any, Rule]], keys: dict[str, str]) -> Spent | None:
        strategy = self.app.extensions[LIMITER].limiter
        for item, rule in rules:
            key = keys[rule.prefix]
            if not strategy.hit(item, rule.prefix, key):
                reset_at = strategy.get_window_stats(item, rule.prefix, key).reset_time
                message = (
                    f"rate limit exceeded: {item} captures {rule.what} ({rule.setting});"
                    " nothing was stored"
                )
                return message, max(1, math.ceil(reset_at - time.time()))
        return None
