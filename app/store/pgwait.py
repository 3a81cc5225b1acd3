"""PostgreSQL under gevent: look at the socket before handing the wait to the event loop.

Under gevent, psycopg waits for its socket with the ``poll`` that gevent patched, and every step of
a round trip (send the query, then read each piece of the reply) goes through gevent's hub even
when the socket is ready already: the waiting greenlet runs again only after every other greenlet
ready at that moment has had its turn. On a worker busy with captures that cost the capture writer
milliseconds a round trip, part of them while its transaction held bins' rows that the other
processes were waiting for. Here a connection first asks the socket itself (the original,
unpatched ``poll``, with no timeout) and waits on the hub only when the socket is not ready, so a
round trip costs one turn of the loop: the one spent waiting for PostgreSQL's reply.
"""

from __future__ import annotations

import functools
import select
from collections.abc import Callable
from time import monotonic
from typing import Any

import psycopg
from psycopg import errors, waiting
from sqlalchemy import event
from sqlalchemy.engine import Engine

_MASKS = {
    waiting.Wait.R: select.POLLIN,
    waiting.Wait.W: select.POLLOUT,
    waiting.Wait.RW: select.POLLIN | select.POLLOUT,
}


def wait(gen: Any, fileno: int, interval: float = 0.1, timeout: float | None = None) -> Any:
    """Run one of psycopg's generators to its end (psycopg.waiting.wait's contract)."""
    on_hub, unpatched_poll = _gevent()
    deadline = None if timeout is None else monotonic() + timeout
    poll = unpatched_poll()
    try:
        state = next(gen)
        poll.register(fileno, _MASKS[state])
        while True:
            events = poll.poll(0)
            if not events:
                try:
                    on_hub[state](fileno, timeout=interval)
                except TimeoutError:  # gevent raises socket.timeout, an alias
                    pass
                events = poll.poll(0)
            if events:
                flags = events[0][1]
                ready = (waiting.Ready.R if flags & select.POLLIN else 0) | (
                    waiting.Ready.W if flags & select.POLLOUT else 0
                )
                if not ready:  # POLLERR, POLLHUP or POLLNVAL alone
                    raise errors.OperationalError("connection socket closed")
            else:
                ready = waiting.Ready.NONE
            state = gen.send(ready)
            poll.modify(fileno, _MASKS[state])
            if deadline is not None and monotonic() >= deadline:
                raise errors._WaitTimeout("wait timeout expired")
    except StopIteration as done:
        return done.value


@functools.cache
def _gevent() -> tuple[dict[Any, Callable[..., Any]], Callable[[], Any]]:
    """gevent's waits per kind, and the poll that gevent did not patch."""
    from gevent import socket as green
    from gevent.monkey import get_original

    on_hub = {
        waiting.Wait.R: green.wait_read,
        waiting.Wait.W: green.wait_write,
        waiting.Wait.RW: green.wait_readwrite,
    }
    return on_hub, get_original("select", "poll")


def readable(fileno: int) -> bool:
    """Tell, without waiting, whether the socket has something to read (or its end)."""
    poll = _gevent()[1]()
    poll.register(fileno, select.POLLIN)
    return bool(poll.poll(0))


class Connection(psycopg.Connection):
    """A psycopg connection that waits with ``wait`` above."""

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        return wait(gen, self.pgconn.socket, interval=interval, timeout=timeout)


def install(engine: Engine) -> None:
    """Make every connection the engine opens from now on a ``Connection`` above."""

    @event.listens_for(engine, "do_connect")
    def _connect(dialect, conn_rec, cargs, cparams) -> Connection:
        return Connection.connect(*cargs, **cparams)
