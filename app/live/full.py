"""Captures in full on the live stream, for a relay (``hookscope forward``) watching the bin.

A watcher that asks (``watch`` with ``"full": true``) joins the bin's full room too, and gets
``captured_full``: the summary plus ``headers`` and ``body_base64``, so a relay can send a
capture on without asking the API for it. Bodies over MAX_BODY_BYTES come without it
(``body_base64`` null): the relay reads those by seq. Nothing is built unless this process holds
a watcher of the room.

Only without a message queue: with Redis, a capture stored by one process would need its body
published to every process in case one holds a relay, so full events are not offered there and
the acknowledgement says so (``"full": false``); a relay then reads each capture by seq.
"""

from __future__ import annotations

import base64
from typing import Any

import socketio as sio

from app.domain.capture import Snapshot
from app.domain.shapes import SummaryDict
from app.extensions import socketio

CAPTURED_FULL = "captured_full"
MAX_BODY_BYTES = 256 * 1024


def room(bin_id: str) -> str:
    return f"full:{bin_id}"


def offered() -> bool:
    """Tell whether this server sends captures in full: not when processes share a queue."""
    return not isinstance(socketio.server.manager, sio.PubSubManager)


def event_for(summary: SummaryDict, snap: Snapshot) -> dict[str, Any] | None:
    """Build the full event of a stored capture, or None when no watcher here would get it.

    The path and query string are whole, as stored (a summary cuts long ones)."""
    if not offered():
        return None
    watchers = socketio.server.manager.get_participants("/", room(summary["bin"]))
    if next(iter(watchers), None) is None:
        return None
    body = snap.body
    small = len(body) <= MAX_BODY_BYTES
    event: dict[str, Any] = {**summary, "path": snap.path, "query_string": snap.query_string}
    event.pop("path_truncated", None)
    event.pop("query_string_truncated", None)
    return {
        **event,
        "headers": snap.headers,
        "body_base64": base64.b64encode(body).decode("ascii") if small else None,
    }
