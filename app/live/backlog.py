"""Drop a connection whose unsent packets pass HOOKSCOPE_LIVE_QUEUE_BYTES or _PACKETS.

python-engineio queues every packet for a connection's writer without bound. A client that never
reads (and answers pings blindly, which keeps it connected) made the server hold everything sent
to it: thirty ``watch`` frames took a worker from 103 to 342 MiB. Every packet for a connection
passes through ``engineio.Server.send_packet``: Socket.IO's events and acknowledgements, and what
the fan-out did not write straight to the socket (app/live/fanout.py writes a frame directly only
while nothing else of that connection is queued or being written, so at most one frame is in
flight there). This module wraps that call: it counts what waits in the connection's queue, and
when a packet would pass either cap it drops the connection instead. Its queue is emptied, its
socket shut down (a writer blocked on a full socket gives up) and engineio's disconnect handlers
run; the client reconnects and catches up by sequence number (app/web/sockets.py).

Bytes are counted without walking the queue: engineio's writer takes everything queued at once
(``Socket.poll``), so a queue found empty has been taken, and the count starts again from there.
"""

from __future__ import annotations

import logging
import socket as stdlib_socket
import weakref
from typing import Any

from app.internals import Reliance

log = logging.getLogger("hookscope.live")
# Each packet costs at least this much to hold (the packet object and its queue entry).
PACKET_OVERHEAD = 64


class Backlog:
    """The send-queue caps of one Socket.IO server's connections."""

    def __init__(self, server: Any, max_bytes: int, max_packets: int) -> None:
        self.server, self.eio = server, server.eio
        self.max_bytes, self.max_packets = max_bytes, max_packets
        self._send = self.eio.send_packet
        # Per engine.io socket: bytes queued since its queue was last found empty.
        self._queued: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
        self._dropping: weakref.WeakSet[Any] = weakref.WeakSet()
        self.dropped = 0

    def install(self) -> None:
        """Route every packet the server sends through ``send_packet`` below."""
        self.eio.send_packet = self.send_packet

    def send_packet(self, sid: str, pkt: Any) -> None:
        """Queue ``pkt`` for the connection, or drop the connection if it would pass a cap."""
        sock = self.eio.sockets.get(sid)
        if sock is None:
            self._send(sid, pkt)  # engineio says it cannot
            return
        if sock in self._dropping:
            return
        waiting = sock.queue.qsize()
        held = self._queued.get(sock, 0) if waiting else 0
        size = _size(pkt)
        if waiting + 1 > self.max_packets or held + size > self.max_bytes:
            self.drop(sock, waiting, held)
            return
        self._queued[sock] = held + size
        self._send(sid, pkt)

    def drop(self, sock: Any, waiting: int, held: int) -> None:
        """Close a connection that does not take what is sent to it; free what waits for it."""
        self.dropped += 1
        log.warning(
            "live: dropped a connection that does not read: %d packet(s), %d bytes waiting"
            " (caps HOOKSCOPE_LIVE_QUEUE_PACKETS=%d, HOOKSCOPE_LIVE_QUEUE_BYTES=%d)",
            waiting,
            held,
            self.max_packets,
            self.max_bytes,
        )
        self.hang_up(sock)

    def hang_up(self, sock: Any) -> None:
        """Close the connection now, whatever waits for it: nothing more is queued for it, its
        socket is shut down (a writer blocked on a full socket gives up) and engineio closes it
        without sending anything more (a client that does not read would never take it)."""
        if sock in self._dropping:
            return
        self._dropping.add(sock)
        _empty(sock.queue, self.eio.get_queue_empty_exception())
        self._queued.pop(sock, None)
        lane = _lane_of(self.server, sock.sid)
        if lane is not None:
            try:  # wakes a writer blocked on the full socket, and ends the reader
                lane.sock.shutdown(stdlib_socket.SHUT_RDWR)
            except OSError:
                pass
        # Not here: this may be the middle of an emit to a room, or of a handler's replay.
        self.server.start_background_task(_close, sock)


def hang_up(server: Any, eio_sid: str) -> None:
    """Close an engine.io connection of ``server`` (a socketio.Server) now, as a dropped one is."""
    backlog = _installed.get(server)
    sock = server.eio.sockets.get(eio_sid)
    if backlog is not None and sock is not None:
        backlog.hang_up(sock)


def _close(sock: Any) -> None:
    sock.close(wait=False, abort=True)


def _empty(queue: Any, empty: type[BaseException]) -> None:
    while True:
        try:
            queue.get_nowait()
        except empty:
            return
        queue.task_done()


def _size(pkt: Any) -> int:
    data = getattr(pkt, "data", None)
    return PACKET_OVERHEAD + (len(data) if isinstance(data, str | bytes) else 0)


def _lane_of(server: Any, eio_sid: str) -> Any:
    lanes = getattr(server.manager, "lanes", None)
    return None if lanes is None else lanes.by_sid.get(eio_sid)


def install(server: Any, max_bytes: int, max_packets: int) -> Backlog:
    """Cap every connection's send queue on ``server`` (a socketio.Server)."""
    backlog = _installed[server] = Backlog(server, max_bytes, max_packets)
    backlog.install()
    return backlog


_installed: weakref.WeakKeyDictionary[Any, Backlog] = weakref.WeakKeyDictionary()


# The private parts this module relies on (app/internals.py): without them a client that never
# reads would make the server hold what is sent to it without bound, so the server refuses to
# start. send_packet is every packet's way into a connection's queue; poll takes all of it.
RELIANCES = tuple(
    Reliance(
        "python-engineio",
        part,
        "a client that never reads would make the server hold what is sent to it, unbounded",
        fallback=False,
    )
    for part in ("engineio:Server.send_packet", "engineio.socket:Socket.poll")
)
