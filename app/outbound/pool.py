"""Keep connections to a target open between calls, as browsers and HTTP libraries do.

Auto-forward sends every capture of a bin to the same few targets; a new TCP (and TLS)
connection per capture cost the capturing worker more than the capture itself. A connection is
kept only after an answer read in full that did not ask to close it (wire.Reply.keep_alive), and
it is taken again only for a call to the same scheme, host name, port and address, after that
call has resolved the name and the guard has judged every address again: a kept connection
never bypasses the guard, nor a DNS answer that changed.

Kept connections are closed when idle past IDLE_SECONDS, or when found with anything to read
while idle: the server closed it (EOF), or sent bytes nobody asked for. A call that still finds
its kept connection closed before any answer arrives is made once more on a new connection
(client.py), as browsers do; the server read nothing of it then.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from .wire import quiet

# Under common servers' keep-alive timeouts (Node 5 s, nginx 75 s, gunicorn 2 s: then the
# idle check finds the connection closed and a new one is made).
IDLE_SECONDS = 4.0
PER_KEY = 8  # idle connections kept per (scheme, host, port, address)
TOTAL = 64  # idle connections kept in all; past it the longest idle is closed

Key = tuple[str, str, int, str, ssl.SSLContext | None]


class Pool:
    """Idle connections by target, newest taken first; safe across threads and greenlets."""

    def __init__(
        self,
        *,
        per_key: int = PER_KEY,
        total: int = TOTAL,
        idle_seconds: float = IDLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_key, self.total, self.idle_seconds = per_key, total, idle_seconds
        self._clock = clock
        self._idle: OrderedDict[Key, list[tuple[socket.socket, float]]] = OrderedDict()
        self._count = 0
        self._lock = threading.Lock()

    @staticmethod
    def key(scheme: str, host: str, port: int, address: str, tls: ssl.SSLContext | None) -> Key:
        # The context itself, not its id: a kept key holds it, so no later context takes its id.
        return (scheme, host, port, address, tls if scheme == "https" else None)

    def take(
        self,
        scheme: str,
        host: str,
        port: int,
        addresses: Sequence[str],
        tls: ssl.SSLContext | None,
    ) -> tuple[socket.socket, str] | None:
        """An idle connection to one of the checked addresses (in their order), or None."""
        stale: list[socket.socket] = []
        found = None
        with self._lock:
            now = self._clock()
            for address in addresses:
                key = self.key(scheme, host, port, address, tls)
                kept = self._idle.get(key)
                while kept and found is None:
                    sock, since = kept.pop()
                    self._count -= 1
                    if now - since > self.idle_seconds:
                        stale.append(sock)
                    else:
                        found = (sock, address)
                if kept is not None and not kept:
                    del self._idle[key]
                if found:
                    break
        for sock in stale:
            sock.close()
        if found and not quiet(found[0]):
            found[0].close()
            return self.take(scheme, host, port, addresses, tls)
        return found

    def give_back(self, key: Key, sock: socket.socket) -> None:
        """Keep a connection whose answer was read in full and that may stay open."""
        closing: list[socket.socket] = []
        with self._lock:
            kept = self._idle.setdefault(key, [])
            self._idle.move_to_end(key)
            if len(kept) >= self.per_key:
                closing.append(kept.pop(0)[0])
                self._count -= 1
            kept.append((sock, self._clock()))
            self._count += 1
            while self._count > self.total:
                oldest_key = next(iter(self._idle))
                oldest = self._idle[oldest_key]
                if oldest:
                    closing.append(oldest.pop(0)[0])
                    self._count -= 1
                if not oldest:
                    del self._idle[oldest_key]
        for sock in closing:
            sock.close()

    def idle(self) -> int:
        """How many connections are kept."""
        return self._count

    def close(self) -> None:
        """Close every kept connection."""
        with self._lock:
            kept, self._idle, self._count = self._idle, OrderedDict(), 0
        for pairs in kept.values():
            for sock, _since in pairs:
                sock.close()
