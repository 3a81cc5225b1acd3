"""Flood limits (flask-limiter): captures per sender address and per bin, bin creation per address,
CSP reports per address.

Counted in memory for one process, in Redis (REDIS_URL) when several share the work. A limit set
to ``off`` is skipped; HOOKSCOPE_RATE_LIMITS=false turns them all off. Bin creation is limited by
flask-limiter's decorator; captures bypass Flask (app/capture.py), so ``CaptureLimits`` counts
them with the same limiter's strategy and storage.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import limits
from flask import Flask, Response, current_app, jsonify, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from werkzeug.exceptions import TooManyRequests

from app.web import csp_reports


def _setting(name: str) -> Callable[[], str]:
    return lambda: current_app.config[name]


def _off(name: str) -> Callable[[], bool]:
    return lambda: not current_app.config[name]


def init_app(app: Flask) -> None:
    """Put the limit on bin creation; captures are checked by ``CaptureLimits``."""
    # One limiter per app: flask-limiter keeps decorated limits by function name, so a shared one
    # would count a request once for every app built in the process (gunicorn's master builds
    # one to run migrations before forking the worker that builds its own).
    # ProxyFix, when configured, has already put the real client address in REMOTE_ADDR.
    limiter = Limiter(key_func=get_remote_address, app=app)
    # The decorators below hold the limiter only weakly; the app keeps it alive.
    app.extensions["hookscope.limiter"] = limiter

    views = app.view_functions
    # The home page's form and the API share one creation budget per address.
    creating = limiter.shared_limit(
        _setting("HOOKSCOPE_RATE_LIMIT_CREATE"),
        scope="create-bin",
        exempt_when=_off("HOOKSCOPE_RATE_LIMIT_CREATE"),
    )
    for endpoint in ("views.create_bin", "api.create_bin"):
        views[endpoint] = creating(views[endpoint])
    views["csp_reports.receive"] = limiter.limit(
        _setting("HOOKSCOPE_RATE_LIMIT_CSP_REPORTS"),
        exempt_when=_off("HOOKSCOPE_RATE_LIMIT_CSP_REPORTS"),
    )(views["csp_reports.receive"])
    app.register_error_handler(TooManyRequests, _too_many)


def _too_many(err: TooManyRequests) -> Response | tuple[Response, int] | TooManyRequests:
    """Say which limit was hit, which setting changes it, and when to come back."""
    limit = current_app.extensions["hookscope.limiter"].current_limit
    retry = {"Retry-After": str(max(1, math.ceil(limit.reset_at - time.time())) if limit else 60)}
    if request.path.startswith("/api/"):
        message = f"rate limit exceeded: {err.description} (HOOKSCOPE_RATE_LIMIT_CREATE)"
        return jsonify(error="too_many_requests", message=message), 429, retry
    if request.path == csp_reports.PATH:
        text = f"rate limit exceeded: {err.description} (HOOKSCOPE_RATE_LIMIT_CSP_REPORTS)\n"
        return Response(text, 429, mimetype="text/plain", headers=retry)
    return err


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
        strategy = self.app.extensions["hookscope.limiter"].limiter
        for item, setting, prefix in self.rules:
            key = (environ.get("REMOTE_ADDR") or "-") if prefix == "capture-address" else bin_id
            if not strategy.hit(item, prefix, key):
                reset_at = strategy.get_window_stats(item, prefix, key).reset_time
                message = f"rate limit exceeded: {item} ({setting}); nothing was stored"
                return message, max(1, math.ceil(reset_at - time.time()))
        return None
