"""Watching a bin live through a real gunicorn with a real python-socketio client."""

from __future__ import annotations

import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import socketio

WAIT = 5.0


class Watcher:
    """A page's view of a bin: every ``captured`` event received, and the de-duplicated list."""

    def __init__(self, server, transports: tuple[str, ...] | None = ("websocket",)) -> None:
        # None lets the client start with long polling and upgrade, as a browser does.
        self.url, self.transports = server.url, transports and list(transports)
        # The read keys of the bins this server created: watching needs the bin's key.
        self.keys = server.auth.keys
        self.sio = socketio.Client(reconnection_delay=0.1, reconnection_delay_max=0.5)
        self.events: list[dict] = []
        self.by_seq: dict[int, dict] = {}
        self.changed = threading.Condition()
        self.sio.on("captured", self._on_captured)

    def _on_captured(self, summary: dict) -> None:
        with self.changed:
            self.events.append(summary)
            self.by_seq.setdefault(summary["seq"], summary)
            self.changed.notify_all()

    def connect(self) -> Watcher:
        self.sio.connect(self.url, transports=self.transports, wait_timeout=WAIT)
        return self

    def watch(self, bin_id: object, after: object = None) -> dict:
        return self.sio.call("watch", self.request(bin_id, after), timeout=WAIT)

    def request(self, bin_id: object, after: object) -> dict:
        key = self.keys.get(bin_id) if isinstance(bin_id, str) else None
        return {"bin": bin_id, "after": after, **({"key": key} if key else {})}

    def wait_for(self, seqs: set[int], timeout: float = WAIT) -> list[int]:
        """Wait until all of ``seqs`` have arrived; return the seqs seen, in first-arrival order."""
        with self.changed:
            self.changed.wait_for(lambda: seqs <= self.by_seq.keys(), timeout=timeout)
            return list(self.by_seq)

    def close(self) -> None:
        self.sio.disconnect()


@pytest.fixture
def watcher(server):
    running = Watcher(server).connect()
    yield running
    running.close()


def capture(capture_url: str, body: bytes = b"{}") -> int:
    response = requests.post(capture_url + "/hook", data=body, timeout=10)
    assert response.status_code == 200
    return int(response.headers["X-Hookscope-Seq"])


def listed(server, bin_id: str) -> list[dict]:
    url = f"{server.url}/api/v1/bins/{bin_id}/requests?limit=200"
    response = requests.get(url, auth=server.auth, timeout=10)
    return response.json()["requests"]


@pytest.mark.parametrize("transports", [("websocket",), None], ids=["websocket", "polling-upgrade"])
def test_each_capture_arrives_live_in_the_shape_the_list_shows(server, transports):
    bin_ = server.create_bin()
    watcher = Watcher(server, transports).connect()
    try:
        ack = watcher.watch(bin_["id"])
        assert ack["ok"] is True
        assert (ack["last_seq"], ack["gap"]) == (0, False)
        for n in range(1, 4):
            assert capture(bin_["capture_url"], b'{"n": %d}' % n) == n
            assert watcher.wait_for({n}) == list(range(1, n + 1))
    finally:
        watcher.close()
    assert watcher.events == list(reversed(listed(server, bin_["id"])))


def test_watch_after_replays_what_was_missed_then_streams(server, watcher):
    bin_ = server.create_bin()
    for _ in range(5):
        capture(bin_["capture_url"])
    ack = watcher.watch(bin_["id"], after=2)
    assert (ack["ok"], ack["last_seq"], ack["gap"]) == (True, 5, False)
    assert watcher.wait_for({3, 4, 5}) == [3, 4, 5]
    capture(bin_["capture_url"])
    capture(bin_["capture_url"])
    assert watcher.wait_for({6, 7}) == [3, 4, 5, 6, 7]
    # The replay carries the same summaries the list API gives.
    by_seq = {s["seq"]: s for s in listed(server, bin_["id"])}
    assert all(watcher.by_seq[seq] == by_seq[seq] for seq in range(3, 8))
    assert {e["seq"] for e in watcher.events} == {3, 4, 5, 6, 7}


def test_a_watcher_sees_only_its_own_bin(server, watcher):
    mine, other = server.create_bin(), server.create_bin()
    assert watcher.watch(mine["id"])["ok"] is True
    capture(other["capture_url"])
    capture(mine["capture_url"])
    assert watcher.wait_for({1}) == [1]
    assert [e["bin"] for e in watcher.events] == [mine["id"]]


@pytest.mark.parametrize(
    "payload",
    [
        {"bin": "nosuchbinnosuchbinnosuchbi", "after": None},
        {"after": None},
        {"bin": "{id}", "after": "x"},
        {"bin": "{id}", "after": -1},
        {"bin": "{id}", "after": True},
        "just a string",
    ],
    ids=["unknown-bin", "missing-bin", "after-text", "after-negative", "after-bool", "not-a-dict"],
)
def test_bad_watch_is_refused_with_a_reason(server, watcher, payload):
    bin_ = server.create_bin()
    if isinstance(payload, dict) and payload.get("bin") == "{id}":
        payload = {**payload, "bin": bin_["id"]}
    ack = watcher.sio.call("watch", payload, timeout=WAIT)
    assert ack["ok"] is False
    assert isinstance(ack["error"], str) and ack["error"]
    # A refused watch joins nothing.
    capture(bin_["capture_url"])
    time.sleep(0.3)
    assert watcher.events == []


def test_a_watcher_catches_up_after_the_server_restarts(fresh_server):
    fresh_server.start()
    bin_ = fresh_server.create_bin()
    watcher = Watcher(fresh_server)
    acks: list[dict] = []

    def on_ack(ack: dict) -> None:
        with watcher.changed:
            acks.append(ack)
            watcher.changed.notify_all()

    @watcher.sio.event
    def connect() -> None:
        # What a page does on every (re)connection: ask again from the highest seq it has.
        with watcher.changed:
            after = max(watcher.by_seq, default=None)
        watcher.sio.emit("watch", watcher.request(bin_["id"], after), callback=on_ack)

    watcher.connect()
    try:
        with watcher.changed:
            assert watcher.changed.wait_for(lambda: acks, timeout=WAIT)
        for _ in range(3):
            capture(bin_["capture_url"])
        assert watcher.wait_for({1, 2, 3}) == [1, 2, 3]

        fresh_server.stop(signal.SIGTERM)
        fresh_server.start()
        # Sent while the client is still reconnecting (or just after): replay or room delivers.
        assert [capture(bin_["capture_url"]) for _ in range(2)] == [4, 5]
        assert watcher.wait_for({1, 2, 3, 4, 5}, timeout=15) == [1, 2, 3, 4, 5]
        time.sleep(0.3)
    finally:
        watcher.close()
    assert sorted(watcher.by_seq) == [1, 2, 3, 4, 5]
    assert {e["seq"] for e in watcher.events} == {1, 2, 3, 4, 5}
    assert len(acks) >= 2 and all(ack["ok"] for ack in acks)


def test_a_room_of_watchers_each_gets_every_capture_of_a_burst_once(server):
    bin_ = server.create_bin()
    watchers = [Watcher(server).connect() for _ in range(6)]
    watchers.append(Watcher(server, transports=None).connect())  # polling, then upgraded
    try:
        for w in watchers:
            assert w.watch(bin_["id"])["ok"] is True
        # Concurrent captures: the fan-out meets connections with frames still queued or in flight.
        with ThreadPoolExecutor(max_workers=8) as pool:
            seqs = set(pool.map(lambda i: capture(bin_["capture_url"], b"%d" % i), range(80)))
        assert seqs == set(range(1, 81))
        for w in watchers:
            w.wait_for(seqs, timeout=15)
    finally:
        for w in watchers:
            w.close()
    for w in watchers:
        assert sorted(e["seq"] for e in w.events) == sorted(seqs)  # each once, none garbled


def test_the_worker_sends_a_room_one_shared_frame_per_watcher(server, watcher):
    bin_ = server.create_bin()
    assert watcher.watch(bin_["id"])["ok"] is True
    assert watcher.wait_for({capture(bin_["capture_url"])}) == [1]
    # Logged when the worker publishes its first event: if a library upgrade changed what
    # app/live/fanout.py hooks, it would say "engineio's queues" here instead.
    assert "fan-out: one shared frame per watcher" in server.log_text()


def test_websocket_compression_is_declined(server):
    # Browsers offer permessage-deflate; every watcher must get the same uncompressed bytes.
    host = server.url.removeprefix("http://")
    with socket.create_connection(tuple(host.split(":")), timeout=5) as sock:
        sock.sendall(
            f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            assert chunk, f"closed after {head!r}"
            head += chunk
    status, *headers = head.split(b"\r\n\r\n")[0].decode().split("\r\n")
    assert status.startswith("HTTP/1.1 101")
    assert not [h for h in headers if h.lower().startswith("sec-websocket-extensions")]


def test_closing_a_websocket_logs_no_error(fresh_server):
    """A page that leaves ends its WebSocket quietly: no traceback, no 500 on a closed socket."""
    server = fresh_server.start()
    bin_ = server.create_bin()
    for _ in range(3):
        w = Watcher(server).connect()
        assert w.watch(bin_["id"])["ok"] is True
        w.close()
    time.sleep(0.5)
    log = server.log_text()
    assert "Traceback" not in log and "StopIteration" not in log, log[-3000:]
