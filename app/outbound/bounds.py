"""The operator's outbound settings as the client takes them, and this process's call slots."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flask import Flask

from app.config import server_settings
from app.domain import paths

from . import client, guard, loop
from .slots import Slots

EXTENSION = "hookscope.outbound_slots"
# Where a worker keeps its forwarder (app/runtime/forwarder.py), found here by the capture gate.
FORWARDER = "hookscope.forwarder"


def limits_of(config: Mapping[str, Any]) -> client.Limits:
    """The bounds on every outbound call (HOOKSCOPE_OUTBOUND_*)."""
    return client.Limits(
        connect_timeout=float(config["HOOKSCOPE_OUTBOUND_CONNECT_TIMEOUT_SECONDS"]),
        timeout=float(config["HOOKSCOPE_OUTBOUND_TIMEOUT_SECONDS"]),
        max_response_bytes=config["HOOKSCOPE_OUTBOUND_MAX_RESPONSE_BYTES"],
        max_redirects=config["HOOKSCOPE_OUTBOUND_MAX_REDIRECTS"],
    )


def allow_of(config: Mapping[str, Any]) -> guard.AllowList:
    return config["HOOKSCOPE_OUTBOUND_ALLOW"]


def slots_of(app: Flask) -> Slots:
    """This process's outbound call slots, shared by replays and auto-forwards."""
    slots = app.extensions.get(EXTENSION)
    if slots is None:
        slots = app.extensions[EXTENSION] = Slots(
            app.config["HOOKSCOPE_OUTBOUND_CONCURRENCY"],
            app.config["HOOKSCOPE_OUTBOUND_CONCURRENCY_PER_BIN"],
        )
    return slots


def forwarder_of(app: Flask) -> Any | None:
    """This process's auto-forwarder, when it runs one (the server's workers do)."""
    return app.extensions.get(FORWARDER)


def own_urls(config: Mapping[str, Any], seen_as: Iterable[str] = ()) -> loop.OwnURLs:
    """This server's own capture URLs: HOOKSCOPE_PUBLIC_URL, where it listens, and the URLs
    it was reached at (``seen_as``: the page's)."""
    listening = server_settings()
    return loop.own_urls(
        [config["HOOKSCOPE_PUBLIC_URL"], *seen_as],
        listening.host,
        listening.port,
        paths.CAPTURE_PREFIX,
    )
