"""Redis going away and coming back: what live events do meanwhile, and how pages catch up.

Redis carries only live events between processes (and the flood-limit counts, app/web/limits.py):
captures are stored and answered without it. While it is away:

- an event still reaches the watchers of the process that published it (python-socketio
  delivers to its own process before it publishes); the other processes' watchers miss it;
- after a failed publish, this process does not try Redis again for ``RETRY_SECONDS`` (each try
  is two connection attempts and two error lines in the log), and the events meanwhile are
  counted as missed.

When it is back, every page that may have missed something is told ``resync`` and watches
again from the highest seq it has, which replays what it missed (app/web/sockets.py):

- a process whose listener reconnected tells its own clients (their events from other
  processes went nowhere while it was away);
- a process whose publishes failed tells every process, through Redis, once Redis answers
  again (everyone else's clients missed its events). A network cut between one process and
  Redis shows only in that process; this is what reaches the others.

A resync costs each page one ``watch`` call; it is idempotent (pages keep the highest seq and
drop repeats), so telling a page that missed nothing is harmless.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import socketio

from app.internals import Reliance

# Event sent to pages: watch again from the highest seq you have.
RESYNC = "resync"
# Message published to every process: tell your clients to resync.
RESYNC_METHOD = "hookscope.resync"
RETRY_SECONDS = 1.0
# A listener that reconnected tells its clients after this long, once Redis answers a PING: the
# subscription is in place by then, so a page's replay and the live stream leave no gap.
RESYNC_DELAY_SECONDS = 0.5
CONNECT_TIMEOUT_SECONDS = 2.0
log = logging.getLogger("hookscope.live")


class Resilient(socketio.RedisManager):
    """python-socketio's Redis manager, told what to do when Redis goes away and comes back."""

    _down_until = float("-inf")
    _missed = False  # a publish failed or was skipped, and the others have not been told
    _retrying = False
    _connects = 0
    _pinger: Any = None

    def _publish(self, data: Any) -> Any:
        if time.monotonic() < self._down_until:
            self._note_missed()
            return None
        sent = super()._publish(data)  # None: it gave up (after logging why)
        if sent is None:
            self._down_until = time.monotonic() + RETRY_SECONDS
            self._note_missed()
        return sent

    def _redis_connect(self) -> None:
        super()._redis_connect()
        self._connects += 1
        if self._connects > 1:
            # The listener (or a publish after a failure) connected again: anything from the
            # other processes meanwhile never reached this one's clients.
            self.server.start_background_task(self._resync_when_answering)

    def heard(self, data: dict[str, Any]) -> bool:
        """Handle our own messages from the channel; True when ``data`` was one of them."""
        if data.get("method") != RESYNC_METHOD:
            return False
        try:
            self.resync_clients()
        except Exception:  # the listener must go on
            log.exception("telling pages to catch up failed")
        return True

    def resync_clients(self) -> None:
        """Tell this process's clients to watch again from the highest seq they have."""
        self.server.emit(RESYNC, {"reason": "live"}, namespace="/", ignore_queue=True)

    def _note_missed(self) -> None:
        self._missed = True
        if not self._retrying:
            self._retrying = True
            self.server.start_background_task(self._tell_others_when_back)

    def _answers(self) -> bool:
        """PING Redis on a connection of our own, quietly, with a short timeout."""
        import redis

        if self._pinger is None:
            self._pinger = redis.Redis.from_url(
                self.redis_url,
                socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
                socket_timeout=CONNECT_TIMEOUT_SECONDS,
            )
        try:
            return bool(self._pinger.ping())
        except redis.RedisError:
            return False

    def _tell_others_when_back(self) -> None:
        try:
            while True:
                self.server.sleep(RETRY_SECONDS)
                if not self._answers():
                    continue
                self._down_until = float("-inf")
                self._missed = False
                told = super()._publish({"method": RESYNC_METHOD, "host_id": self.host_id})
                if told is not None:
                    log.warning("live events: Redis answers again; open pages catch up")
                    return
                self._missed = True
        finally:
            self._retrying = False

    def _resync_when_answering(self) -> None:
        self.server.sleep(RESYNC_DELAY_SECONDS)
        if self._answers():
            self.resync_clients()


# The private part this module relies on (app/internals.py): without it, pages whose events from
# other processes went missing while this process's listener was away are not told to catch up.
RELIANCES = (
    Reliance(
        "python-socketio",
        "socketio:RedisManager._redis_connect",
        "after Redis comes back, pages would not be told to catch up on what this process missed",
        fallback=True,
    ),
)
