"""Hear about new captures from the bin's live stream, and take them in full where it has them.

The watcher asks for captures in full (``watch`` with ``"full": true``, app/live/full.py): each
``captured_full`` event goes into ``Recent`` (app/cli/recent.py), where the readers take it
without asking the API. Every event's seq (and the acknowledgement's ``last_seq``) raises
``Signal.latest``; a reader that finds a seq missing from ``Recent`` reads it by seq from the
API (app/cli/follow.py). So an event lost in a network drop costs nothing: after every
(re)connection the readers are woken to read again, and they ask every few seconds anyway.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from app import internals
from app.cli.binurl import BinRef
from app.cli.feed import KEY_HELP, capture_of
from app.cli.recent import TOO_LARGE, Recent

CONNECT_TIMEOUT = 10.0
# Waits between reconnection attempts: doubling from the first, at most the last.
RECONNECT_FIRST, RECONNECT_MAX = 0.25, 5.0
MISSING_EXTRA = (
    "this command needs the client extra, which is not installed: "
    "pipx install 'hookscope[client]' (or pip install 'hookscope[client]')"
)


class ClientExtraMissing(RuntimeError):
    """websocket-client, which the live stream needs, is not installed."""


def require_client_extra() -> None:
    """Refuse to start without websocket-client, saying how to install it."""
    try:
        import websocket  # noqa: F401 - websocket-client: python-socketio's WebSocket transport
    except ImportError:
        raise ClientExtraMissing(MISSING_EXTRA) from None
    import socketio  # noqa: F401 - loaded now (a second or more) rather than while connecting


class Signal:
    """The newest seq the server said exists, and a wait for it to move past a point."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.latest = 0
        self.wakes = 0  # raised by wake(): readers fetch again whatever latest says

    def saw(self, seq: int) -> None:
        with self._changed:
            if seq > self.latest:
                self.latest = seq
                self._changed.notify_all()

    def wake(self) -> None:
        with self._changed:
            self.wakes += 1
            self._changed.notify_all()

    def wait_past(self, seq: int, wakes: int, timeout: float) -> None:
        """Return once latest passes ``seq``, wake() is called after ``wakes``, or at timeout."""
        with self._changed:
            self._changed.wait_for(lambda: self.latest > seq or self.wakes != wakes, timeout)


class Watcher:
    """A thread that keeps one Socket.IO connection watching the bin, reconnecting when lost."""

    def __init__(
        self,
        ref: BinRef,
        key: str | None,
        signal: Signal,
        recent: Recent,
        note: Callable[[str, str], None],
        stop: threading.Event,
    ) -> None:
        self.ref, self.key, self.signal, self.note, self.stop = ref, key, signal, note, stop
        self.recent = recent
        self.fatal: str | None = None  # set when the server refused for good
        self._client: Any = None
        self._thread = threading.Thread(target=self._run, name="hookscope-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        client = self._client
        if client is not None:
            client.disconnect()

    def _run(self) -> None:
        wait, connected_once = RECONNECT_FIRST, False
        while not self.stop.is_set():
            lost = threading.Event()
            try:
                self._watch(lost)
            except _Fatal as fatal:
                self.fatal = str(fatal)
                self.stop.set()
                self.signal.wake()
                return
            except _Lost as why:
                self.note("stream", f"live stream: {why}; trying again")
                self.stop.wait(wait)
                wait = min(wait * 2, RECONNECT_MAX)
                continue
            self.note("stream", "live stream: reconnected" if connected_once else "live stream: on")
            connected_once, wait = True, RECONNECT_FIRST
            self.signal.wake()  # fetch whatever was stored while we were away
            while not (lost.is_set() or self.stop.is_set()):
                lost.wait(1.0)
            self.recent.set_live(False)
            self.close()
            if not self.stop.is_set():
                self.note("stream", "live stream: connection lost; reconnecting")

    def _watch(self, lost: threading.Event) -> None:
        import socketio

        # The stream's frames are JSON, parsed next: websocket-client's own UTF-8 check of each
        # frame, in Python, would only do twice what the parser does.
        client = socketio.Client(
            reconnection=False, websocket_extra_options={"skip_utf8_validation": True}
        )
        if internals.usable(*RELIANCES):
            _handle_on_reader(client)
        client.on("captured", lambda summary: self._captured(summary))
        client.on("captured_full", lambda item: self._captured_full(item))
        client.on("bin_deleted", lambda _data: self._deleted(lost))
        client.on("disconnect", lambda *_reason: lost.set())
        try:
            client.connect(
                self.ref.server,
                transports=["websocket"],
                socketio_path=_socketio_path(self.ref.server),
                wait_timeout=CONNECT_TIMEOUT,
            )
        except socketio.exceptions.ConnectionError as err:
            raise _Lost(f"cannot connect to {self.ref.server} ({_innermost(err)})") from None
        self._client = client
        after = self.signal.latest or None
        try:
            ack = client.call(
                "watch",
                {"bin": self.ref.bin_id, "after": after, "key": self.key or "", "full": True},
                timeout=CONNECT_TIMEOUT,
            )  # fmt: skip
        except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError):
            client.disconnect()
            raise _Lost("the server did not answer watch") from None
        if not isinstance(ack, dict) or not ack.get("ok"):
            client.disconnect()
            error = ack.get("error") if isinstance(ack, dict) else ack
            raise _Fatal(f"{self.ref.server} refused to stream the bin: {error} ({KEY_HELP})")
        # An older server ignores "full" and leaves it out: then every capture is read by seq.
        self.recent.set_live(ack.get("full") is True)
        self.signal.saw(int(ack.get("last_seq") or 0))

    def _captured(self, summary: Any) -> None:
        if isinstance(summary, dict) and isinstance(summary.get("seq"), int):
            self.signal.saw(summary["seq"])

    def _captured_full(self, item: Any) -> None:
        try:
            seq = item["seq"]
            if item["body_base64"] is None:
                self.recent.put(seq, TOO_LARGE)
            else:
                self.recent.put(seq, capture_of(item))
        except (KeyError, TypeError, ValueError):
            return  # not what this client knows: the reader will read it by seq
        self.signal.saw(seq)

    def _deleted(self, lost: threading.Event) -> None:
        self.fatal = f"the bin {self.ref.bin_id} was deleted on {self.ref.server}"
        self.stop.set()
        lost.set()
        self.signal.wake()


# The private part relied on (app/internals.py); without it each event takes a thread of its own.
RELIANCES = (
    internals.Reliance(
        "python-engineio",
        "engineio.client:Client._trigger_event",
        "each live event would be handled on a thread of its own, slower on a busy machine",
        fallback=True,
    ),
)


def _handle_on_reader(client: Any) -> None:
    """Run event handlers on the stream's reading thread, not on a new thread for each event.

    python-engineio starts a thread per message; with two messages a capture (its summary and
    the capture in full), starting them cost more than the rest of a relay's work for the
    capture on a busy machine. These handlers only file the event and wake a reader, and never
    wait on the stream, so running them in order on the reading thread is safe (and keeps the
    events in the order they came).
    """
    trigger = client.eio._trigger_event

    def on_reader(event: str, *args: Any, **kwargs: Any) -> Any:
        return trigger(event, *args, **{**kwargs, "run_async": False})

    client.eio._trigger_event = on_reader


def _socketio_path(server: str) -> str:
    """Socket.IO's path, under the prefix the server is mounted at (the client drops the URL's)."""
    prefix = urlsplit(server).path.strip("/")
    return f"{prefix}/socket.io" if prefix else "socket.io"


def _innermost(err: BaseException) -> BaseException:
    """The exception at the bottom of a chain (python-socketio's only says "Connection error")."""
    while (inner := err.__cause__ or err.__context__) is not None:
        err = inner
    return err


class _Lost(Exception):
    pass


class _Fatal(Exception):
    pass
