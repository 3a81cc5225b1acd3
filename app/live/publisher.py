"""Send live events from one greenlet per process, in the order they were published.

The capture (or API call) that published an event is answered without waiting for its fan-out,
and a room of watchers gets one shared frame each (app/live/fanout.py). With Redis, what has
queued meanwhile is published as one message.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import socketio as sio

from app.extensions import socketio

# Events published as one Redis message at most (a burst of captures is a few batches).
MAX_EVENTS_A_MESSAGE = 256
log = logging.getLogger("hookscope.live")


class Publisher:
    """A queue of events and the greenlet that emits them."""

    def __init__(self, server: sio.Server, fanout_mode: str | None) -> None:
        self.queue = server.eio.create_queue()
        self.empty = server.eio.get_queue_empty_exception()
        log.info("live events: one publisher greenlet; fan-out: %s", fanout_mode)
        server.start_background_task(self._run)

    def put(self, event: str, data: Any, to: str) -> None:
        self.queue.put((event, data, to))

    def _run(self) -> None:
        manager = socketio.server.manager
        batch = getattr(manager, "batch", contextlib.nullcontext)
        while True:
            events = [self.queue.get()]
            while len(events) < MAX_EVENTS_A_MESSAGE:
                try:
                    events.append(self.queue.get_nowait())
                except self.empty:
                    break
            try:
                with batch():
                    for event, data, to in events:
                        self._send(event, data, to)
            except Exception:
                log.exception("%d live event(s) were not published", len(events))
            finally:
                for _ in events:
                    self.queue.task_done()

    @staticmethod
    def _send(event: str, data: Any, to: str) -> None:
        try:
            socketio.emit(event, data, to=to)
        except Exception:
            # The capture is stored and answered; a page that missed this catches up by seq.
            log.exception("live event %s for %s was not sent", event, to)
