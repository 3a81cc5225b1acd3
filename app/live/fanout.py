"""Send one Socket.IO event to a whole room as one pre-built WebSocket frame, written per watcher.

python-socketio encodes an event once, but python-engineio then queues it for every recipient, wakes
each connection's writer greenlet, and simple-websocket frames it again with wsproto for each one:
about 70 µs of Python per watcher on a small machine, before the kernel's own send. A capture seen
by 100 open pages waited up to 10 ms for its last frame. Without compression a server's text
frame is the same bytes for every recipient, so here it is built once and written straight to
each watcher's socket by the greenlet that emits (one send() each, ~20 µs).

A frame goes straight to a connection only while nothing else of that connection is pending: the
connection's engineio queue is empty and no write of its own is under way (engineio's writer takes
the same per-connection lock for each send). Otherwise, and for everything this module does not
know (polling clients, acknowledgements, binary payloads, another server's WebSocket), the packet
takes engineio's ordinary queue. So frames stay whole and in order. A frame the socket cannot take
at once without waiting goes to the queue too; one it takes only in part is finished by a greenlet
that holds the connection's lock until it is out, so a slow reader never holds up the room.

WebSocket compression (permessage-deflate, which browsers offer) is declined: compressing ~400-byte
summaries saves little, costs a zlib stream per connection, and would make every frame different.

This reaches into two documented-but-internal seams, checked when the app starts (``install``):
engineio's async driver table (``Server._async["websocket"]``, the gevent driver's simple-websocket
wrapper) and the engineio socket behind each WebSocket handler. If either is not what this module
expects, ``install`` says so and everything takes engineio's own path.
"""

from __future__ import annotations

import contextlib
import logging
import struct
from collections.abc import Iterator
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from app import internals
from app.internals import Reliance

log = logging.getLogger("hookscope.live")
# Frames up to this size go straight out. A bigger one (a summary with a very long path) takes
# engineio's queue, so that a socket taking only part of a frame stays the exception.
DIRECT_FRAME_MAX = 4096


class Lane:
    """One WebSocket connection's socket, and the lock that keeps its frames whole and in order."""

    __slots__ = ("eio_socket", "sock", "lock")

    def __init__(self, eio_socket: Any, sock: Any, lock: Any) -> None:
        self.eio_socket, self.sock, self.lock = eio_socket, sock, lock

    def send_now(self, frame: bytes) -> bool:
        """Write ``frame`` if nothing of this connection is pending; False: use engineio's queue."""
        eio = self.eio_socket
        if self.lock.locked() or not eio.queue.empty() or eio.closed or eio.closing:
            return False
        if not eio.upgraded or eio.upgrading:
            return False
        self.lock.acquire()
        try:
            sent = self.sock.send(frame, 0, 0.0)  # gevent: timeout 0.0 never waits
        except OSError:  # EAGAIN (no room now), or a broken connection engineio will notice
            self.lock.release()
            return False
        if sent == len(frame):
            self.lock.release()
            return True
        # Only part of it fitted: the rest must follow before anything else on this connection.
        import gevent

        gevent.spawn(self._finish, memoryview(frame)[sent:])
        return True

    def _finish(self, rest: memoryview) -> None:
        try:
            self.sock.sendall(rest)
        except OSError:
            pass  # the connection is gone; its reader ends it
        finally:
            self.lock.release()


class Lanes:
    """The WebSocket connections this worker serves, by engine.io session id."""

    def __init__(self) -> None:
        self.by_sid: dict[str, Lane] = {}

    def driver(self, base: type) -> type:
        """Subclass engineio's gevent WebSocket driver to register each connection's lane."""
        lanes = self.by_sid

        class WebSocket(base):  # type: ignore[misc, valid-type]
            def __init__(self, handler: Any, server: Any) -> None:
                super().__init__(self._serve, server)
                self._handler = handler
                self._eio_socket = getattr(handler, "__self__", None)
                from gevent.lock import Semaphore

                self._lock = Semaphore()

            def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
                # Decline compression: every watcher then gets the same bytes (module docstring).
                environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
                return super().__call__(environ, start_response)

            def _serve(self, ws: Any) -> Any:
                import gevent.socket

                eio_socket = self._eio_socket
                sock = getattr(self.ws, "sock", None)
                # Only a gevent socket: send_now() relies on its send(..., timeout=0.0).
                if (
                    eio_socket is not None
                    and isinstance(sock, gevent.socket.socket)
                    and hasattr(eio_socket, "queue")
                ):
                    lanes[eio_socket.sid] = Lane(eio_socket, sock, self._lock)
                try:
                    return self._handler(ws)
                finally:
                    if eio_socket is not None:
                        lanes.pop(eio_socket.sid, None)

            def send(self, message: Any) -> Any:
                with self._lock:
                    return super().send(message)

            def close(self) -> Any:
                with self._lock:
                    return super().close()

        return WebSocket


def text_frame(text: str) -> bytes:
    """Build an unmasked, uncompressed, final text frame (RFC 6455, 5.2), as a server sends it."""
    payload = text.encode()
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 1 << 16:
        return b"\x81\x7e" + struct.pack("!H", n) + payload
    return b"\x81\x7f" + struct.pack("!Q", n) + payload


class FanoutMixin:
    """A Socket.IO client manager whose emits to many write one shared frame per watcher."""

    lanes: Lanes | None = None
    server: Any

    def emit(  # noqa: PLR0913 - python-socketio's signature
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> Any:
        if self.lanes is None or callback is not None:
            return super().emit(  # type: ignore[misc]
                event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, to=to,
                **kwargs,
            )  # fmt: skip
        room = to or room
        if namespace not in self.rooms:  # type: ignore[attr-defined]
            return None
        args = list(data) if isinstance(data, tuple) else ([] if data is None else [data])
        pkt = self.server.packet_class(sio_packet.EVENT, namespace=namespace, data=[event, *args])
        encoded = pkt.encode()
        if not isinstance(encoded, str):  # binary attachments: several packets, engineio's path
            return super().emit(  # type: ignore[misc]
                event, data, namespace, room=room, skip_sid=skip_sid, to=None, **kwargs
            )
        eio_pkt = eio_packet.Packet(eio_packet.MESSAGE, encoded)
        frame = text_frame(eio_pkt.encode())
        direct = len(frame) <= DIRECT_FRAME_MAX
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        lanes = self.lanes.by_sid
        for sid, eio_sid in self.get_participants(namespace, room):  # type: ignore[attr-defined]
            if sid in skip:
                continue
            lane = lanes.get(eio_sid) if direct else None
            if lane is None or not lane.send_now(frame):
                self.server._send_eio_packet(eio_sid, eio_pkt)
        return None


class Manager(FanoutMixin, socketio.Manager):
    """In-process rooms (one worker, no message queue)."""


class RedisManager(socketio.RedisManager, Manager):
    """Rooms shared through Redis: emits are published; each worker delivers to its own watchers.

    The order of bases puts the fan-out after Redis's publish and before the in-process delivery
    that each worker runs for what it hears from Redis.

    Emits made inside ``batch()`` are published as one Redis message, which every worker's
    listener unpacks into the usual emit messages (python-socketio's ``_publish``/``_listen``
    seams, the ones its own Redis, Kafka and Kombu managers implement). One PUBLISH a capture was
    the biggest part of a worker's Python in scale-out mode: ~150 us, 22% of the time the worker
    held the GIL under load.
    """

    _held: list[dict[str, Any]] | None = None

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Publish the emits made inside as one message when the block ends."""
        if not internals.usable(*BATCH):
            yield  # one message per emit, python-socketio's own way
            return
        self._held = []
        try:
            yield
        finally:
            held, self._held = self._held, None
            if len(held) == 1:
                super()._publish(held[0])
            elif held:
                super()._publish({"method": BATCH, "host_id": self.host_id, "messages": held})

    def _publish(self, data: Any) -> Any:
        if self._held is not None and isinstance(data, dict) and data.get("method") == "emit":
            self._held.append(data)
            return None
        return super()._publish(data)

    def _listen(self) -> Iterator[Any]:
        for message in super()._listen():
            try:
                data = message if isinstance(message, dict) else self.json.loads(message)
            except ValueError:
                yield message  # not ours: python-socketio's listener decides
                continue
            if isinstance(data, dict) and data.get("method") == BATCH:
                yield from data.get("messages", ())
            else:
                yield data


# The private parts this module relies on (app/internals.py); without them it takes
# python-engineio's queues (FANOUT) or publishes one Redis message per event (BATCH).
_SLOWER_FANOUT = "each live event would be framed once per watcher (slower fan-out)"
_MORE_REDIS = "with Redis, each live event would be one message (more Redis work per capture)"
FANOUT = tuple(
    Reliance(package, part, _SLOWER_FANOUT, fallback=True)
    for package, part in (
        ("python-engineio", "engineio.async_drivers._websocket_wsgi:SimpleWebSocketWSGI"),
        ("python-socketio", "socketio:Server._send_eio_packet"),
        ("python-socketio", "socketio:Manager.get_participants"),
    )
)
BATCH = tuple(
    Reliance("python-socketio", f"socketio:RedisManager.{name}", _MORE_REDIS, fallback=True)
    for name in ("_publish", "_listen")
)
RELIANCES = FANOUT + BATCH
# The method name of a published batch of emits (python-socketio's own are emit, callback, ...).
BATCH = "hookscope.emits"


def install(server: socketio.Server) -> str:
    """Turn on direct frames for ``server``'s manager if the libraries look as expected; say how."""
    manager = server.manager
    if not isinstance(manager, FanoutMixin):
        return "engineio's queues (not a fan-out manager)"
    missing = [r.part for r in FANOUT if not internals.usable(r)]
    if missing:
        return f"engineio's queues (missing {', '.join(missing)})"
    eio = server.eio
    driver = getattr(eio, "_async", {}).get("websocket")
    try:
        from engineio.async_drivers._websocket_wsgi import SimpleWebSocketWSGI
    except ImportError:
        return "engineio's queues (engineio has no simple-websocket driver)"
    if eio.async_mode != "gevent" or not (
        isinstance(driver, type) and issubclass(driver, SimpleWebSocketWSGI)
    ):
        return f"engineio's queues (async mode {eio.async_mode}, WebSocket driver {driver!r})"
    lanes = Lanes()
    eio._async = {**eio._async, "websocket": lanes.driver(driver)}
    manager.lanes = lanes
    return "one shared frame per watcher"
