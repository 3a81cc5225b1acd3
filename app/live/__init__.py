"""Live updates over Socket.IO: one room per bin, a ``watch`` event to join, ``publish_*`` to tell.

Protocol (default namespace):
  client -> ``watch`` {"bin": id, "after": seq | null, "key": read key (optional with a cookie),
            "paged": true}
  ack    <- {"ok": true, "last_seq": n, "gap": bool, "more": bool, "through": seq}
            or {"ok": false, "error": "...", "code": "..."}
  client -> ``replay`` {"bin": id} while ``more``: the catch-up's next page
  ack    <- {"ok": true, "bin": id, "more": bool, "through": seq}
  server -> ``captured`` summary: first those missed after ``after`` (oldest first, a page per
            watch or replay), then new ones;
            ``deleted`` {"bin", "seqs"}, ``cleared`` {"bin"}, ``pinned`` summary,
            ``bin_updated`` bin, ``bin_deleted`` {"bin"};
            ``refused`` {"bin"}: captures were refused (read GET /api/v1/bins/<id>/usage), at most
            once per bin per process every 2 s (app/ingest/tally.py);
            to every client: ``storage`` {"ok": bool, "retry_after": seconds}.
A client keeps the highest seq it has seen and ignores repeats: around a join the same request can
come both from the catch-up and from the room. While a catch-up goes on, it resumes after
``through`` (everything up to it has been sent), not after the newest seq it has seen. A client
that does not say ``paged`` gets one page, with ``gap`` when older ones were left out. A
connection that does not read what is sent to it is dropped (app/live/backlog.py).

Under gevent, events are sent by one publisher greenlet per process, in the order they were
published: the capture (or API call) that published one is answered without waiting for its
fan-out, and a room of watchers gets one shared frame each (app/live/fanout.py). Joining a room
(the ``watch`` event) is handled beside the HTTP routes, in app/web/sockets.py.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

import socketio as sio
from flask import Flask

from app.domain.capture import Snapshot
from app.domain.shapes import BinDict, SummaryDict
from app.extensions import socketio, under_gevent
from app.live import backlog, fanout, full, resilient
from app.live.publisher import Publisher
from app.store.batch import Recorded

CAPTURED = "captured"
STORAGE = "storage"


def room(bin_id: str) -> str:
    return f"bin:{bin_id}"


def init_app(app: Flask) -> None:
    """Bind Socket.IO to the app: in-process, or through Redis when several processes share bins."""
    queue = app.config["REDIS_URL"] or None
    # Flask-SocketIO would build the Redis manager from message_queue; ours adds the fan-out.
    manager = (
        fanout.RedisManager(
            queue,
            channel="hookscope",
            # A Redis host that is down must not hold the publisher for the OS's connect
            # timeout (minutes); see app/live/resilient.py for what happens meanwhile.
            redis_options={"socket_connect_timeout": resilient.CONNECT_TIMEOUT_SECONDS},
        )
        if queue
        else fanout.Manager()
    )
    socketio.init_app(
        app,
        # Under gunicorn's gevent worker the standard library is patched; anywhere else (tests,
        # the CLI) plain threads are the honest choice.
        async_mode="gevent" if under_gevent() else "threading",
        cors_allowed_origins=None,
        client_manager=manager,
        # Polling needs every request of a session to reach the same process (sticky sessions).
        # With a queue there may be many processes, so only WebSocket, one long connection, is
        # offered. The page always uses WebSocket.
        transports=["websocket"] if queue else ["polling", "websocket"],
    )
    _fanout_modes[socketio.server] = fanout.install(socketio.server)
    # After the fan-out: what it cannot write straight out goes through the capped queue.
    backlog.install(
        socketio.server,
        app.config["HOOKSCOPE_LIVE_QUEUE_BYTES"],
        app.config["HOOKSCOPE_LIVE_QUEUE_PACKETS"],
    )


_fanout_modes: weakref.WeakKeyDictionary[sio.Server, str] = weakref.WeakKeyDictionary()
_publishers: weakref.WeakKeyDictionary[sio.Server, Publisher] = weakref.WeakKeyDictionary()


def _publish(event: str, data: Any, bin_id: str | None, to: str | None = None) -> None:
    """Send ``event`` to ``to``, else the bin's room (every client when ``bin_id`` is None), in
    order."""
    server = socketio.server
    if to is None and bin_id is not None:
        to = room(bin_id)
    if server.async_mode != "gevent":
        # Threads (tests, the CLI): send now, so the caller's next step sees it sent.
        socketio.emit(event, data, to=to)
        return
    publisher = _publishers.get(server)
    if publisher is None:
        # Made on first use, in the worker process (gunicorn builds the app in the master too).
        publisher = _publishers[server] = Publisher(server, _fanout_modes.get(server))
    # Through the publisher greenlet, never on the caller's path: with Redis, an emit is also
    # a PUBLISH, which waits for Redis (or, when it is away, for two failed attempts).
    publisher.put(event, data, to)


def publish_capture(recorded: Recorded, snap: Snapshot | None = None) -> None:
    """Tell every page watching the bin about a committed capture (and what retention dropped);
    with the request itself, tell watchers of captures in full too (app/live/full.py)."""
    bin_id = recorded.summary["bin"]
    if snap is not None:
        event = full.event_for(recorded.summary, snap)
        if event is not None:
            _publish(full.CAPTURED_FULL, event, bin_id, to=full.room(bin_id))
    _publish(CAPTURED, recorded.summary, bin_id)
    if recorded.dropped:
        publish_deleted(bin_id, recorded.dropped)


class _StorageNews:
    """What this process last told pages about storage, so that a flood of failures is one event."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ok = True
        self.failure_told_at = float("-inf")

    def worth_telling(self, ok: bool, every: float) -> bool:
        if ok and self.ok:
            # Every stored capture asks: no news, and no lock (gevent's, in Python) to say so.
            return False
        now = time.monotonic()
        with self.lock:
            if ok:
                news, self.ok = not self.ok, True
            else:
                news = self.ok or now - self.failure_told_at >= every
                if news:
                    self.ok, self.failure_told_at = False, now
            return news


_storage_news = _StorageNews()


def publish_storage_status(ok: bool, retry_after: int) -> None:
    """Tell every open page whether storage takes writes; call it after each capture's outcome.

    ``retry_after`` is HOOKSCOPE_RETRY_AFTER_SECONDS (passed in: captures run outside Flask's app
    context). Costs nothing when nothing changed. A failure is told at once and then at most once
    per ``retry_after`` seconds while failures go on (pages keep their banner up a few of those
    periods after the last one); the first success after a failure is told at once. The throttle
    is per process: with several workers, each may tell.
    """
    if _storage_news.worth_telling(ok, retry_after):
        _publish(STORAGE, {"ok": ok, "retry_after": retry_after}, None)


def publish_deleted(bin_id: str, seqs: list[int]) -> None:
    _publish("deleted", {"bin": bin_id, "seqs": seqs}, bin_id)


def publish_cleared(bin_id: str) -> None:
    _publish("cleared", {"bin": bin_id}, bin_id)


def publish_pinned(summary: SummaryDict) -> None:
    _publish("pinned", summary, summary["bin"])


def publish_bin(bin_: BinDict | dict[str, Any]) -> None:
    _publish("bin_updated", bin_, bin_["id"])


def publish_bin_deleted(bin_id: str) -> None:
    _publish("bin_deleted", {"bin": bin_id}, bin_id)


def publish_refused(bin_id: str) -> None:
    """Tell the bin's open pages that newly counted refusals are stored (they read the counts)."""
    _publish("refused", {"bin": bin_id}, bin_id)
