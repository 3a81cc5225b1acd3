"""Socket.IO handlers, beside the HTTP routes: ``watch`` joins a bin's room and starts catching
the client up; ``replay`` sends the catch-up's next page (app/live/watches.py has the bounds)."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask_socketio import emit, join_room

from app.extensions import socketio
from app.live import CAPTURED, backlog, full, room
from app.live.watches import Replay, Watches, has_room, may_watch
from app.runtime import metrics
from app.store import requests as stored
from app.web import access

_watches = Watches()  # this process's connections


@socketio.on("watch")
def on_watch(data: Any) -> dict[str, Any]:
    """Join a bin's room and send the first page of what the client missed.

    A client that says ``paged: true`` gets ``more`` and ``through`` in the answer and asks for
    the next page with ``replay``; one that does not gets the newest page of what it missed,
    with ``gap: true`` when older ones were left out (reload the list), as before pages.
    """
    if not isinstance(data, dict) or not isinstance(data.get("bin"), str):
        return {"ok": False, "error": "watch needs {'bin': '<id>', 'after': <seq or null>}"}
    after = data.get("after")
    if after is not None and (not isinstance(after, int) or isinstance(after, bool) or after < 0):
        return {"ok": False, "error": "'after' must be a sequence number or null"}
    if not socketio.server.manager.is_connected(request.sid, "/"):
        return _GONE  # a frame that arrived before the connection was cut off
    config = current_app.config
    conn = _watches.of(request.sid, config["HOOKSCOPE_WATCH_RATE"])
    if not may_watch(conn):
        # Each watch may replay a page: a client asking faster than any page would is cut off.
        socketio.start_background_task(_disconnect, request.sid)
        return _refused(
            "watch_rate",
            f"this connection said watch more often than {config['HOOKSCOPE_WATCH_RATE']}"
            " (HOOKSCOPE_WATCH_RATE) and is closed; connect again",
        )
    key = data.get("key") if isinstance(data.get("key"), str) else None
    bin_ = access.readable(data["bin"], key)
    if bin_ is None:
        # The same answer for a missing bin and a wrong key.
        return {"ok": False, "error": "no such bin, or this key does not open it"}
    most = config["HOOKSCOPE_WATCHES_PER_SOCKET"]
    if not has_room(conn, bin_.id, most):
        return _refused(
            "too_many_watches",
            f"this connection watches {most} bins, the most it may"
            " (HOOKSCOPE_WATCHES_PER_SOCKET); open another connection",
        )
    # Join first, then read: a capture committed in between arrives twice, never zero times.
    if not _join(room(bin_.id)):
        # Cut off while this handler read: its disconnect has run, so forget what it made here.
        _watches.forget(request.sid)
        return _GONE
    # A relay asks for captures in full (app/live/full.py), where this server offers them.
    in_full = data.get("full") is True and full.offered()
    if in_full:
        join_room(full.room(bin_.id))  # nothing waited since the join above
    _watching(True)
    paged = data.get("paged") is True
    ack: dict[str, Any] = {"ok": True, "bin": bin_.id, "last_seq": max(bin_.last_seq, after or 0)}
    if "full" in data:
        ack["full"] = in_full
    if after is None:
        conn.bins[bin_.id] = None
        ack["gap"] = False
        return {**ack, "more": False, "through": ack["last_seq"]} if paged else ack
    # Unpaged clients get one page at most: nothing asks for a second.
    limit = config["HOOKSCOPE_REPLAY_LIMIT"]
    if not paged:
        limit = min(limit, config["HOOKSCOPE_REPLAY_PAGE"])
    start, ack["gap"] = stored.replay_start(bin_.id, after, limit)
    replay = conn.bins[bin_.id] = Replay(start, ack["last_seq"])
    more = _send_page(bin_.id, replay)
    ack["last_seq"] = max(ack["last_seq"], replay.through)
    if not more:
        conn.bins[bin_.id] = None
    return {**ack, "more": more, "through": replay.through} if paged else ack


@socketio.on("replay")
def on_replay(data: Any) -> dict[str, Any]:
    """Send the next page of a bin's catch-up, once the client has had the last one."""
    bin_id = data.get("bin") if isinstance(data, dict) else None
    conn = _watches.by_sid.get(request.sid)
    replay = conn.bins.get(bin_id) if conn is not None and isinstance(bin_id, str) else None
    if conn is None or replay is None:
        return _refused(
            "no_replay", "nothing more to replay for this bin here; send watch with after"
        )
    if replay.busy:
        return _refused("replay_busy", "a page is on its way; ask again once it has arrived")
    more = _send_page(bin_id, replay)
    if not more:
        conn.bins[bin_id] = None
    return {"ok": True, "bin": bin_id, "more": more, "through": replay.through}


@socketio.on("disconnect")
def on_disconnect(*_reason: Any) -> None:
    """A socket that goes away watches nothing any more."""
    _watches.forget(request.sid)
    _watching(False)


def _send_page(bin_id: str, replay: Replay) -> bool:
    """Emit the next page of the catch-up, oldest first; tell whether more are left."""
    replay.busy = True
    try:
        page, more = stored.replay_page(
            bin_id, replay.through, replay.until, current_app.config["HOOKSCOPE_REPLAY_PAGE"]
        )
        for summary in page:
            emit(CAPTURED, summary)
    finally:
        replay.busy = False
    replay.through = page[-1]["seq"] if more else max(replay.until, replay.through)
    return more


def _refused(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": message, "code": code}


_GONE = _refused("disconnected", "this connection was closed; connect again")


def _join(name: str) -> bool:
    """Join a room; False when the connection was cut off while this handler waited (a read)."""
    try:
        join_room(name)
    except KeyError:  # python-socketio's rooms no longer know this connection
        return False
    return True


def _disconnect(sid: str) -> None:
    """Close the client's connection, not only its namespace: a client that does not read
    never acts on the namespace's disconnect packet, and would keep the connection open."""
    server = socketio.server
    eio_sid = server.manager.eio_sid_from_sid(sid, "/")
    server.disconnect(sid)
    if eio_sid is not None:
        backlog.hang_up(server, eio_sid)


# This process's sockets that watch a bin, for the live_watchers gauge (app/runtime/metrics.py).
_watchers: set[str] = set()


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
