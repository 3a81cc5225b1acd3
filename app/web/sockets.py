"""Socket.IO handlers, beside the HTTP routes: ``watch`` joins a bin's room (app/live/)."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask_socketio import emit, join_room

from app.domain.models import SummaryDict
from app.extensions import socketio
from app.live import CAPTURED, full, room
from app.runtime import metrics
from app.store import requests as stored
from app.web import access


@socketio.on("watch")
def on_watch(data: Any) -> dict[str, Any]:
    """Join a bin's room and replay what the client missed."""
    if not isinstance(data, dict) or not isinstance(data.get("bin"), str):
        return {"ok": False, "error": "watch needs {'bin': '<id>', 'after': <seq or null>}"}
    after = data.get("after")
    if after is not None and (not isinstance(after, int) or isinstance(after, bool) or after < 0):
        return {"ok": False, "error": "'after' must be a sequence number or null"}
    key = data.get("key") if isinstance(data.get("key"), str) else None
    bin_ = access.readable(data["bin"], key)
    if bin_ is None:
        # The same answer for a missing bin and a wrong key.
        return {"ok": False, "error": "no such bin, or this key does not open it"}
    # Join first, then read: a capture committed in between arrives twice, never zero times.
    join_room(room(bin_.id))
    # A relay asks for captures in full (app/live/full.py), where this server offers them.
    in_full = data.get("full") is True and full.offered()
    if in_full:
        join_room(full.room(bin_.id))
    _watching(True)
    missed = [] if after is None else _missed(bin_.id, after)
    for summary in missed:
        emit(CAPTURED, summary)
    last_seq = max([bin_.last_seq, after or 0] + [s["seq"] for s in missed])
    # The replay is capped: when the cap was hit, older misses were left out and the page reloads.
    capped = len(missed) >= current_app.config["HOOKSCOPE_REPLAY_LIMIT"]
    gap = capped and missed[0]["seq"] > after + 1
    answer = {"ok": True, "bin": bin_.id, "last_seq": last_seq, "gap": gap}
    return {**answer, "full": in_full} if "full" in data else answer


def _missed(bin_id: str, after: int) -> list[SummaryDict]:
    return stored.since(bin_id, after, current_app.config["HOOKSCOPE_REPLAY_LIMIT"])


# This process's sockets that watch a bin, for the live_watchers gauge (app/runtime/metrics.py).
_watchers: set[str] = set()


@socketio.on("disconnect")
def on_disconnect(*_: Any) -> None:
    """A socket that goes away watches nothing any more."""
    _watching(False)


def _watching(now: bool) -> None:
    tally = metrics.current
    if tally is None:
        return
    sid = request.sid  # type: ignore[attr-defined] - Flask-SocketIO sets it
    if now:
        _watchers.add(sid)
    else:
        _watchers.discard(sid)
    tally.watchers = len(_watchers)
