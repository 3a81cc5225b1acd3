"""Flood limits on the capture URL: captures per sender address and per bin.

Counted with the app's flask-limiter storage and strategy (app/web/limits.py makes the limiter):
in memory for one process, in Redis (REDIS_URL) when several share the work, in this process
while Redis does not answer. Captures bypass Flask, so they are counted here rather than by a
route decorator.
"""

from __future__ import annotations

import math
import time
from typing import Any

import limits
from flask import Flask

from app.web.limits import counting


class CaptureLimits:
    """The per-address and per-bin capture limits, checked by the capture gate."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        enabled = app.config.get("RATELIMIT_ENABLED", True)
        self.rules = [
            (limits.parse(app.config[name]), name, prefix)
            for name, prefix in (
                ("HOOKSCOPE_RATE_LIMIT_PER_ADDRESS", "capture-address"),
                ("HOOKSCOPE_RATE_LIMIT_PER_BIN", "capture-bin"),
            )
            if enabled and app.config[name]
        ]

    def check(self, environ: dict[str, Any], bin_id: str) -> tuple[str, int] | None:
        """Count this capture; when a limit is spent, say which (message, seconds to wait)."""
        if not self.rules:
            return None
        strategy = counting(self.app)
        for item, setting, prefix in self.rules:
            key = (environ.get("REMOTE_ADDR") or "-") if prefix == "capture-address" else bin_id
            if not strategy.hit(item, prefix, key):
                reset_at = strategy.get_window_stats(item, prefix, key).reset_time
                message = f"rate limit exceeded: {item} ({setting}); nothing was stored"
                return message, max(1, math.ceil(reset_at - time.time()))
        return None
