"""Background pruning of expired bins, and of usage counts past two days, inside the server.

Every worker process runs one loop; pruning is a single idempotent DELETE of what has expired, so
several processes (or hosts) pruning at once only repeat each other's work, never conflict.
"""

from __future__ import annotations

import random

from flask import Flask

from app import live
from app.extensions import socketio
from app.store import bins, usage


def start(app: Flask) -> None:
    """Start the prune loop, unless HOOKSCOPE_PRUNE_INTERVAL_SECONDS is 0."""
    interval = app.config["HOOKSCOPE_PRUNE_INTERVAL_SECONDS"]
    if interval:
        socketio.start_background_task(_loop, app, interval)


def _loop(app: Flask, interval: int) -> None:
    while True:
        # Jitter keeps the workers of one host from waking together.
        socketio.sleep(interval * random.uniform(0.8, 1.2))  # noqa: S311 - not for secrets
        prune_once(app)


def prune_once(app: Flask) -> list[str]:
    """Delete expired bins and tell their open pages; never let a failure end the loop."""
    try:
        with app.app_context():
            expired = bins.prune()
            for bin_id in expired:
                live.publish_bin_deleted(bin_id)
            usage.prune()
    except Exception:  # a database hiccup must not stop future pruning
        app.logger.exception("pruning expired bins failed; will retry")
        return []
    if expired:
        app.logger.info("pruned %d expired bin(s)", len(expired))
    return expired
