"""Flood limits (flask-limiter): captures per sender address and per bin, bin creation per address.

Counted in memory for one process, in Redis (REDIS_URL) when several share the work. A limit set
to ``off`` is skipped; HOOKSCOPE_RATE_LIMITS=false turns them all off.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from flask import Flask, Response, current_app, jsonify, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from werkzeug.exceptions import TooManyRequests


def _setting(name: str) -> Callable[[], str]:
    return lambda: current_app.config[name]


def _off(name: str) -> Callable[[], bool]:
    return lambda: not current_app.config[name]


def _bin_key() -> str:
    return "bin:" + (request.view_args or {}).get("target", "").partition("/")[0]


def init_app(app: Flask) -> None:
    """Put the limits on the capture route and on bin creation."""
    # One limiter per app: flask-limiter keeps decorated limits by function name, so a shared one
    # would count a request once for every app built in the process (gunicorn's master builds
    # one to run migrations before forking the worker that builds its own).
    # ProxyFix, when configured, has already put the real client address in REMOTE_ADDR.
    limiter = Limiter(key_func=get_remote_address, app=app)
    # The decorators below hold the limiter only weakly; the app keeps it alive.
    app.extensions["hookscope.limiter"] = limiter

    def _limit(view: Callable, name: str, key_func: Callable[[], str] | None = None) -> Callable:
        """Register the limit for ``view`` and return the checking wrapper."""
        return limiter.limit(_setting(name), key_func=key_func, exempt_when=_off(name))(view)

    views = app.view_functions
    # One wrapper per view: it checks every limit registered under the view's name, so the
    # per-bin limit is only registered (wrapping twice would count each request twice).
    _limit(views["capture.receive"], "HOOKSCOPE_RATE_LIMIT_PER_BIN", _bin_key)
    views["capture.receive"] = _limit(views["capture.receive"], "HOOKSCOPE_RATE_LIMIT_PER_ADDRESS")
    # The home page's form and the API share one creation budget per address.
    creating = limiter.shared_limit(
        _setting("HOOKSCOPE_RATE_LIMIT_CREATE"),
        scope="create-bin",
        exempt_when=_off("HOOKSCOPE_RATE_LIMIT_CREATE"),
    )
    for endpoint in ("views.create_bin", "api.create_bin"):
        views[endpoint] = creating(views[endpoint])
    app.register_error_handler(TooManyRequests, _too_many)


def _too_many(err: TooManyRequests) -> Response | tuple[Response, int] | TooManyRequests:
    """Say which limit was hit, which setting changes it, and when to come back."""
    limit = current_app.extensions["hookscope.limiter"].current_limit
    retry = {"Retry-After": str(max(1, math.ceil(limit.reset_at - time.time())) if limit else 60)}
    if request.path.startswith("/api/"):
        message = f"rate limit exceeded: {err.description} (HOOKSCOPE_RATE_LIMIT_CREATE)"
        return jsonify(error="too_many_requests", message=message), 429, retry
    if not request.path.startswith("/h/"):
        return err
    per_bin = "bin:" in str(getattr(getattr(err, "limit", None), "key_func", lambda: "")())
    setting = "HOOKSCOPE_RATE_LIMIT_PER_BIN" if per_bin else "HOOKSCOPE_RATE_LIMIT_PER_ADDRESS"
    text = f"rate limit exceeded: {err.description} ({setting}); nothing was stored\n"
    return Response(text, 429, mimetype="text/plain", headers=retry)
