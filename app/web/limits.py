"""Flood limits on routes (flask-limiter), declared where the route is: ``@limited(SETTING)``.

A route's limit is named by the setting that holds its rate (``HOOKSCOPE_RATE_LIMIT_CREATE``,
``600/minute``-style, or off); routes that name the same ``scope`` share one budget. Every route
with a bin in its URL also shares HOOKSCOPE_RATE_LIMIT_NOT_FOUND, which counts only its 404s (no
such bin, or a key that does not open it): a sender probing for bins runs out of it, someone
using their bins never does. A sender is its address, an IPv6 one by its /64
(app/domain/senders.py). Counted in memory for one process, in Redis (REDIS_URL) when several
share the work, in this process while Redis does not answer (flask-limiter's in-memory fallback:
a route is never refused for Redis); HOOKSCOPE_RATE_LIMITS=false turns every limit off. Captures
bypass Flask and are counted by app/ingest/limits.py in token buckets of their own
(app/ingest/buckets.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TypeVar

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from werkzeug.exceptions import TooManyRequests
from werkzeug.wrappers import Response

from app.domain.senders import sender_key
from app.extensions import LIMITER
from app.web.errors import refusal

View = TypeVar("View", bound=Callable[..., object])
_DECLARED = "hookscope_limit"
NOT_FOUND = "HOOKSCOPE_RATE_LIMIT_NOT_FOUND"
# What a limit counts, where its rate alone would not say it.
WHAT_IS_COUNTED = {
    NOT_FOUND: " answers of 404 (no such bin, or a key that does not open it) to this address",
}


def limited(setting: str, *, scope: str | None = None) -> Callable[[View], View]:
    """Declare that this route is limited by the rate in ``setting`` (shared within ``scope``)."""

    def declare(view: View) -> View:
        setattr(view, _DECLARED, (setting, scope))
        return view

    return declare


def init_app(app: Flask) -> None:
    """Make the app's limiter and apply every limit its routes declare."""
    # One limiter per app: flask-limiter keeps decorated limits by function name, so a shared one
    # would count a request once for every app built in the process (gunicorn's master builds
    # one to run migrations before forking the worker that builds its own).
    # ProxyFix, when configured, has already put the real client address in REMOTE_ADDR.
    limiter = Limiter(key_func=_sender, app=app)
    # The wrapped views hold the limiter only weakly; the app keeps it alive.
    app.extensions[LIMITER] = limiter
    views = app.view_functions
    for endpoint, view in list(views.items()):
        declared = getattr(view, _DECLARED, None)
        if declared is None:
            continue
        setting, scope = declared
        rate: Callable[[], str] = lambda setting=setting: current_app.config[setting]  # noqa: E731
        off: Callable[[], bool] = lambda setting=setting: not current_app.config[setting]  # noqa: E731
        if scope is None:
            views[endpoint] = limiter.limit(rate, exempt_when=off)(view)
        else:
            views[endpoint] = limiter.shared_limit(rate, scope=scope, exempt_when=off)(view)
        views[endpoint].hookscope_setting = setting  # type: ignore[attr-defined]
    _limit_not_found(app, limiter)
    app.register_error_handler(TooManyRequests, _too_many)


def _limit_not_found(app: Flask, limiter: Limiter) -> None:
    """Give every route with a bin in its URL the shared budget of 404s per sender."""
    views = app.view_functions
    rate: Callable[[], str] = lambda: current_app.config[NOT_FOUND]  # noqa: E731
    off: Callable[[], bool] = lambda: not current_app.config[NOT_FOUND]  # noqa: E731
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules() if "bin_id" in rule.arguments}
    for endpoint in sorted(endpoints):
        if hasattr(views[endpoint], "hookscope_setting"):
            continue  # a route with a limit of its own (replay) keeps just that one
        views[endpoint] = limiter.shared_limit(
            rate,
            scope="bin-not-found",
            exempt_when=off,
            deduct_when=lambda response: response.status_code == 404,
        )(views[endpoint])
        views[endpoint].hookscope_setting = NOT_FOUND  # type: ignore[attr-defined]


def _sender() -> str:
    """Count a request under its sender: its address, an IPv6 one by its /64."""
    return sender_key(get_remote_address())


def _too_many(err: TooManyRequests) -> Response:
    """Say which limit was hit, which setting changes it, and when to come back."""
    limiter = current_app.extensions[LIMITER]
    limit = limiter.current_limit
    retry = max(1, math.ceil(limit.reset_at - time.time())) if limit else 60
    view = current_app.view_functions.get(_endpoint())
    setting = getattr(view, "hookscope_setting", "HOOKSCOPE_RATE_LIMITS")
    what = WHAT_IS_COUNTED.get(setting, "")
    message = f"rate limit exceeded: {err.description}{what} ({setting})"
    return refusal(429, "too_many_requests", message, {"Retry-After": str(retry)})


def _endpoint() -> str:
    from flask import request

    return request.endpoint or ""
