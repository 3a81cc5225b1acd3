"""Live clients that do not read: bounded memory, cut off, and an honest one that catches up.

Under real gunicorn, with raw WebSocket clients (wsproto over a plain socket with a small
receive buffer) that read only when the test says so: the attack from the bug report (thirty
``watch`` frames for a bin of 64 KiB paths, from a socket that never reads), and a slow but
honest reader that falls behind, is dropped, and catches up by seq when it comes back.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import socketio
from harness import Gunicorn
from worker_memory import PeakRss, settled_rss_kib, worker_pid
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

WAIT = 10.0
# The request line may be 64 KiB: paths just short of it.
LONG_PATH = 64 * 1024 - 200
REPLAYED = 500  # HOOKSCOPE_REPLAY_LIMIT's default
ATTACK_WATCHES = 30
# What the attack may add to the worker. Before the bounds it took 240 MiB and more (each watch
# replayed 500 summaries of 64 KiB paths into the queue of a socket that never read).
BOUND_MIB = 40
MOST_SENT = 10_000
DROPPED = "dropped a connection that does not read"


class RawClient:
    """A Socket.IO client over one raw WebSocket that reads only when ``read`` is called."""

    def __init__(self, server: Gunicorn, rcvbuf: int = 4096) -> None:
        self.sock = socket.socket()
        # Set before connecting: the window it advertises stays small, so the server's writes
        # back up as soon as this client stops reading.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(("127.0.0.1", server.port))
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.texts: list[str] = []
        self.partial = ""
        self.closed = False
        self.sock.sendall(
            self.ws.send(
                Request(
                    host=f"127.0.0.1:{server.port}",
                    target="/socket.io/?EIO=4&transport=websocket",
                    extra_headers=[(b"origin", server.url.encode())],
                )
            )
        )
        self.read_until(lambda: any(t.startswith("0{") for t in self.texts))
        self.send("40")  # join the default namespace
        self.read_until(lambda: any(t.startswith("40{") for t in self.texts))

    def send(self, text: str) -> None:
        self.sock.sendall(self.ws.send(Message(data=text)))

    def emit(self, event: str, data: dict, ack_id: int | None = None) -> None:
        self.send(f"42{'' if ack_id is None else ack_id}{json.dumps([event, data])}")

    def read(self, timeout: float) -> bool:
        """Read what has arrived within ``timeout``; False once the server has closed."""
        if self.closed:
            return False
        readable, _, _ = select.select([self.sock], [], [], timeout)
        if not readable:
            return True
        try:
            data = self.sock.recv(1 << 16)
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return False
        self.ws.receive_data(data)
        for event in self.ws.events():
            if isinstance(event, TextMessage):
                self.partial += event.data  # a message may come in pieces
                if not event.message_finished:
                    continue
                text, self.partial = self.partial, ""
                if text == "2":  # engine.io's ping
                    self.send("3")
                self.texts.append(text)
            elif isinstance(event, Ping):
                self.sock.sendall(self.ws.send(event.response()))
            elif isinstance(event, CloseConnection | RejectConnection):
                self.closed = True
            elif not isinstance(event, AcceptConnection):
                pass
        return not self.closed

    def read_until(self, done, timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, f"not seen in time; got {self.texts[-3:]}"
            assert self.read(0.1), "the server closed the connection"

    def read_to_end(self, timeout: float) -> bool:
        """Read everything the server sends; True if it closed the connection in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.read(0.2):
                return True
        return False

    def captured_seqs(self) -> list[int]:
        seqs = []
        for text in self.texts:
            if text.startswith('42["captured",'):
                seqs.append(json.loads(text[2:])[1]["seq"])
        return seqs

    def close(self) -> None:
        self.sock.close()


class Watcher:
    """An honest page: python-socketio's client, watching a bin and keeping what it hears."""

    def __init__(self, server: Gunicorn, bin_: dict) -> None:
        self.bin = bin_
        self.seqs: list[int] = []
        self.changed = threading.Condition()
        self.sio = socketio.Client()
        self.sio.on("captured", self._captured)
        self.sio.connect(server.url, transports=["websocket"], wait_timeout=WAIT)

    def _captured(self, summary: dict) -> None:
        with self.changed:
            self.seqs.append(summary["seq"])
            self.changed.notify_all()

    def watch(self, after: int | None) -> dict:
        """Watch, paging through the whole catch-up as the page does."""
        request = {"bin": self.bin["id"], "key": self.bin["read_key"], "after": after}
        ack = self.sio.call("watch", {**request, "paged": True}, timeout=WAIT)
        assert ack["ok"] is True, ack
        while ack["more"]:
            ack = self.sio.call("replay", {"bin": self.bin["id"]}, timeout=WAIT)
            assert ack["ok"] is True, ack
        return ack

    def wait_for(self, seqs: set[int]) -> set[int]:
        with self.changed:
            self.changed.wait_for(lambda: seqs <= set(self.seqs), timeout=WAIT)
            return set(self.seqs)

    def close(self) -> None:
        self.sio.disconnect()


def capture_all(bin_: dict, paths: list[str], senders: int = 1) -> None:
    """Capture each path, in order (``senders`` at a time)."""

    def send(part: list[str]) -> None:
        with requests.Session() as session:
            for path in part:
                answer = session.post(f"{bin_['capture_url']}/{path}", data=b"{}", timeout=30)
                assert answer.status_code == 200, answer.text[:200]

    with ThreadPoolExecutor(senders) as pool:
        list(pool.map(send, [paths[i::senders] for i in range(senders)]))


@pytest.fixture
def own_server(tmp_path):
    with Gunicorn(tmp_path) as running:
        yield running


def test_a_socket_that_never_reads_is_cut_off_and_pins_no_memory(own_server):
    server = own_server
    bin_ = server.create_bin()
    capture_all(bin_, [f"{n:05d}" + "p" * LONG_PATH for n in range(REPLAYED)])
    honest = Watcher(server, bin_)
    honest.watch(None)
    pid = worker_pid(server)
    idle = settled_rss_kib(pid)

    attacker = RawClient(server)
    try:
        with PeakRss(pid) as peak:
            watch = {"bin": bin_["id"], "key": bin_["read_key"], "after": 0}
            frames = [attacker.ws.send(Message(data=f"42{n}" + json.dumps(["watch", watch])))
                      for n in range(ATTACK_WATCHES)]  # fmt: skip
            attacker.sock.sendall(b"".join(frames))
            sent = REPLAYED + 1
            capture_all(bin_, [f"during/{n}" for n in range(20)])
            heard = honest.wait_for(set(range(sent, sent + 20)))
            settled_rss_kib(pid)
        # Only now does the attacker read: what reached it, and whether the server closed it.
        cut_off = attacker.read_to_end(timeout=30)
    finally:
        attacker.close()
        honest.close()

    increase = (peak.peak_kib - idle) / 1024
    print(f"\nidle {idle / 1024:.1f} MiB; the attack added at most {increase:.1f} MiB")
    assert cut_off, "a connection that never reads must be dropped"
    assert set(range(sent, sent + 20)) <= heard, "the honest watcher missed events"
    assert increase < BOUND_MIB, f"the worker grew by {increase:.0f} MiB"
    # The frames it sent after it was cut off are answered, not a handler's traceback.
    log_text = server.log_text()
    assert "Traceback" not in log_text, log_text[log_text.index("Traceback") - 200 :][:3000]


def test_a_slow_reader_is_dropped_and_catches_up_by_seq(tmp_path):
    """An honest client that stops reading for a while: once what waits for it passes the cap
    it is dropped; it comes back after the newest seq it has and gets every one after it.

    How much the kernel takes before anything waits in the server depends on the machine
    (loopback grows a socket's send buffer to megabytes), so captures go on, a few hundred at a
    time, until the server says it dropped the reader."""
    env = {
        "HOOKSCOPE_LIVE_QUEUE_BYTES": str(64 * 1024),
        "HOOKSCOPE_REPLAY_PAGE": "200",
        "HOOKSCOPE_REPLAY_LIMIT": str(MOST_SENT),
        "HOOKSCOPE_DEFAULT_MAX_REQUESTS": str(MOST_SENT),
        "HOOKSCOPE_MAX_REQUESTS_CEILING": str(MOST_SENT),
    }
    with Gunicorn(tmp_path, env=env) as server:
        bin_ = server.create_bin()
        slow = RawClient(server)
        try:
            watch = {"bin": bin_["id"], "key": bin_["read_key"], "after": None, "paged": True}
            slow.emit("watch", watch, ack_id=1)
            slow.read_until(lambda: any(t.startswith("431") for t in slow.texts))
            # Summaries of ~2.4 KB each: paths and queries are cut at 1,024 characters.
            long = "s" * 2000
            sent = 0
            while sent < MOST_SENT and DROPPED not in server.log_text():
                capture_all(bin_, [f"{n}/{long}?q={long}" for n in range(sent, sent + 250)], 4)
                sent += 250
            dropped = slow.read_to_end(timeout=30)
        finally:
            slow.close()
        assert dropped, f"the slow reader was not dropped after {sent} captures"
        seen = slow.captured_seqs()
        assert seen == list(range(1, len(seen) + 1)), "what arrived before the drop is in order"
        print(f"\n{sent} captures sent; the reader had {len(seen)} when it was dropped")
        assert len(seen) < sent

        back = Watcher(server, bin_)
        try:
            back.watch(seen[-1] if seen else 0)
            caught_up = back.wait_for(set(range(len(seen) + 1, sent + 1)))
        finally:
            back.close()
        assert sorted(set(seen) | caught_up) == list(range(1, sent + 1))
