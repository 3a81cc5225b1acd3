"""Liveness, readiness, for load balancers, orchestrators and the pages' storage banner.

``/healthz`` is liveness: it answers from the process alone. An orchestrator restarts a process
whose liveness check fails, and a restart cures a stuck process, never a database that is down:
checked against the database, every replica would be restarted in a loop for as long as the
database is away, and the captures they would answer 503 meanwhile (so senders retry) would
meet connection errors instead. ``/readyz`` is readiness: whether captures would be stored.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify

from app.store import engine
from app.store.budget import figures_of
from app.web.errors import UNAVAILABLE

bp = Blueprint("health", __name__)
# Redis is asked at most once a second per process, and never waited on for long.
REDIS_CHECK_EVERY_SECONDS = 1.0
REDIS_TIMEOUT_SECONDS = 1.0
_REDIS = "hookscope.redis_check"


@bp.get("/healthz")
def health() -> Response:
    """Answer 200 while the process serves requests."""
    return jsonify(ok=True)


@bp.get("/readyz")
def ready() -> Response:
    """Answer 200 when a capture would be stored now, else 503; say what each part answered.

    The database's write path decides the status (pages showing the storage banner ask this
    until it says yes). ``storage`` says how full the instance is: at its budget
    (HOOKSCOPE_MAX_STORAGE_BYTES) the heaviest bins are refused, below the disk's margin
    (HOOKSCOPE_MIN_FREE_DISK_BYTES) every capture is. Redis, when configured, is reported but
    does not decide: captures are stored and answered without it (it carries live events between
    processes and the shared flood-limit counts), so taking every process out of a load balancer
    for it would refuse what works.
    """
    database = engine.write_check()
    checks = {"database": database}
    redis_url = current_app.config["REDIS_URL"]
    if redis_url:
        checks["redis"] = redis_check(current_app, redis_url)
    degraded = sorted(name for name, found in checks.items() if not found["ok"])
    body: dict[str, object] = {"ok": database["ok"], "checks": checks}
    if degraded:
        body["degraded"] = degraded
    if database["ok"]:
        body["storage"] = figures_of(current_app)
        return jsonify(body)
    retry = current_app.config["HOOKSCOPE_RETRY_AFTER_SECONDS"]
    response = jsonify(error="storage_unavailable", message=UNAVAILABLE, **body)
    response.status_code = 503
    response.headers["Retry-After"] = str(retry)
    return response


def redis_check(app: Flask, url: str) -> dict[str, Any]:
    """PING Redis: ``{"ok": True}`` or ``{"ok": False, "error": "<the error's class>"}``."""
    import redis

    client, checked_at, found = app.extensions.get(_REDIS, (None, float("-inf"), {"ok": True}))
    if time.monotonic() - checked_at < REDIS_CHECK_EVERY_SECONDS:
        return found
    if client is None:
        client = redis.Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
    try:
        client.ping()
        found = {"ok": True}
    except redis.RedisError as err:
        # The class only: the message can name the host, and this answer is public.
        found = {"ok": False, "error": type(err).__name__}
    app.extensions[_REDIS] = (client, time.monotonic(), found)
    return found
