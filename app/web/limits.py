"""Flood limits on routes (flask-limiter), declared where the route is: ``@limited(SETTING)``.

A route's limit is named by the setting that holds its rate (``HOOKSCOPE_RATE_LIMIT_CREATE``,
``600/minute``-style, or off); routes that name the same ``scope`` share one budget. Counted in
memory for one process, in Redis (REDIS_URL) when several share the work;
HOOKSCOPE_RATE_LIMITS=false turns every limit off. Captures bypass Flask and are counted by
app/ingest/limits.py through ``counting(app)``.

Redis carries only live events and these counts: while it does not answer, nothing is refused
for it. Routes fall back to counting in this process (flask-limiter's in-memory fallback), and so
do captures (``Counting``), each trying Redis again after a while.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import RateLimitItem
from limits.storage import MemoryStorage
from limits.strategies import STRATEGIES, RateLimiter
from werkzeug.exceptions import TooManyRequests
from werkzeug.wrappers import Response

from app.extensions import LIMITER
from app.web.errors import refusal

View = TypeVar("View", bound=Callable[..., object])
_DECLARED = "hookscope_limit"
_COUNTING = "hookscope.counting"
# While Redis does not answer, captures are counted in this process; Redis is tried again after
# this long (one failed attempt each time: on loopback a refused connection, elsewhere at most
# RATELIMIT_STORAGE_OPTIONS' timeouts).
RETRY_SHARED_SECONDS = 5.0
log = logging.getLogger("hookscope.limits")


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
    limiter = Limiter(key_func=get_remote_address, app=app)
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
    app.register_error_handler(TooManyRequests, _too_many)


def _too_many(err: TooManyRequests) -> Response:
    """Say which limit was hit, which setting changes it, and when to come back."""
    limiter = current_app.extensions[LIMITER]
    limit = limiter.current_limit
    retry = max(1, math.ceil(limit.reset_at - time.time())) if limit else 60
    view = current_app.view_functions.get(_endpoint())
    setting = getattr(view, "hookscope_setting", "HOOKSCOPE_RATE_LIMITS")
    message = f"rate limit exceeded: {err.description} ({setting})"
    return refusal(429, "too_many_requests", message, {"Retry-After": str(retry)})


def _endpoint() -> str:
    from flask import request

    return request.endpoint or ""


class Counting:
    """The limiter's strategy for captures, and its twin in this process's memory, used while
    the shared storage (Redis) does not answer."""

    def __init__(self, limiter: Limiter, strategy: str) -> None:
        # The limiter's own storage, never its in-memory fallback (``limiter.limiter`` while
        # flask-limiter thinks the storage dead), so that captures go back to Redis on their own.
        self.shared: RateLimiter = STRATEGIES[strategy](limiter.storage)
        self.local: RateLimiter | None = None
        self.down_until = float("-inf")
        self.down = False

    def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        """Count one and tell whether it was within the limit (the strategy's ``hit``)."""
        return self._call("hit", item, *identifiers)

    def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> Any:
        """The strategy's ``get_window_stats``: when the window resets, what remains."""
        return self._call("get_window_stats", item, *identifiers)

    def _call(self, name: str, *args: Any) -> Any:
        shared = self.shared
        if time.monotonic() >= self.down_until:
            try:
                found = getattr(shared, name)(*args)
            except shared.storage.base_exceptions as err:
                self._went_down(err)
            else:
                if self.down:
                    self.down = False
                    log.warning("flood limits: counting in the shared storage again")
                return found
        if self.local is None:
            # Made when first needed, in the worker: the storage starts a timer of its own.
            self.local = type(shared)(MemoryStorage())
        return getattr(self.local, name)(*args)

    def _went_down(self, err: BaseException) -> None:
        self.down_until = time.monotonic() + RETRY_SHARED_SECONDS
        if not self.down:
            self.down = True
            log.warning(
                "flood limits: the shared storage does not answer (%s); counting captures in"
                " this process until it does",
                type(err).__name__,
            )


def counting(app: Flask) -> Counting:
    """The app's counting for captures (app/ingest/limits.py)."""
    found = app.extensions.get(_COUNTING)
    if found is None:
        strategy = app.config.get("RATELIMIT_STRATEGY") or "fixed-window"
        found = app.extensions[_COUNTING] = Counting(app.extensions[LIMITER], strategy)
    return found
