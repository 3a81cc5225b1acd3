"""Body bytes a stranger can make the worker hold: none before they arrive, and a cap per process.

A capture's buffer grows as its body arrives, so a connection that declares 10 MiB and sends
nothing holds no 10 MiB. The bytes of bodies being read or waiting for their batch's commit are
counted against HOOKSCOPE_MAX_BODY_BYTES_IN_FLIGHT; past it a capture gets 503 with Retry-After,
naming the setting, and nothing of it is stored.
"""

from __future__ import annotations

import hashlib
import os
import select
import socket
import struct
import time

import psycopg
import pytest
import requests
from harness import Gunicorn, SqliteLockHolder
from worker_memory import PeakRss, settled_rss_kib, worker_pid

MIB = 1024 * 1024
IDLE_UPLOADS = 200
DECLARED = 10 * MIB
HONEST = 5_000_000
# What 200 idle uploads and one honest 5 MB body may add to the worker: the body itself (read,
# then written through the blob API: ~1.1x, bench/README.md) and ~64 KiB per idle connection.
# Each idle upload used to pin its declared 10 MiB (200 of them: 2 GiB).
BOUND_MIB = 40


def head(target: str, length: int) -> bytes:
    return (
        f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def reset(sock: socket.socket) -> None:
    """Close with a reset: a FIN mid-body would be a body cut short, not an idle sender."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def read_answer(sock: socket.socket, timeout: float = 30) -> bytes:
    """Read one short response (its head and Content-Length of body)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    top, _, body = data.partition(b"\r\n\r\n")
    fields = dict(line.split(b": ", 1) for line in top.split(b"\r\n")[1:])
    while len(body) < int(fields[b"Content-Length"]):
        body += sock.recv(65536)
    return top + b"\r\n\r\n" + body


def raw_body(server: Gunicorn, bin_id: str, seq: str) -> bytes:
    answer = requests.get(
        f"{server.url}/api/v1/bins/{bin_id}/requests/{seq}/raw", auth=server.auth, timeout=30
    )
    assert answer.status_code == 200
    return answer.content


def test_idle_uploads_pin_no_memory_and_an_honest_capture_gets_through(tmp_path):
    with Gunicorn(tmp_path) as server:
        bin_ = server.create_bin()
        pid = worker_pid(server)
        for _ in range(3):  # warm up: imports, the pool's connections, SQLite's page cache
            requests.post(bin_["capture_url"], data=b"warm", timeout=10).raise_for_status()
        idle = settled_rss_kib(pid)

        socks: list[socket.socket] = []
        body = os.urandom(HONEST)
        try:
            with PeakRss(pid) as peak:
                for _ in range(IDLE_UPLOADS):
                    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
                    sock.sendall(head(f"/h/{bin_['id']}/idle", DECLARED))
                    socks.append(sock)
                settled_rss_kib(pid)  # the worker has taken every head and waits for bodies
                answer = requests.post(bin_["capture_url"], data=body, timeout=60)
                settled_rss_kib(pid)
            # Still waiting: none of them was refused or answered for lack of memory.
            readable, _, _ = select.select(socks, [], [], 0)
            assert readable == []
        finally:
            for sock in socks:
                reset(sock)

        increase = (peak.peak_kib - idle) / 1024
        print(
            f"\nidle RSS {idle / 1024:.1f} MiB; peak with {IDLE_UPLOADS} idle uploads of"
            f" {DECLARED // MIB} MiB and one {HONEST} byte capture: +{increase:.1f} MiB"
        )
        assert increase < BOUND_MIB, f"the worker grew by {increase:.0f} MiB"
        assert answer.status_code == 200, answer.text
        seq = answer.headers["X-Hookscope-Seq"]
        assert hashlib.sha256(raw_body(server, bin_["id"], seq)).digest() == (
            hashlib.sha256(body).digest()
        )


class WriteLock:
    """Hold the database's write path for a bin, so its captures wait for their commit."""

    def __init__(self, server: Gunicorn, bin_id: str) -> None:
        self.url, self.bin_id = server.env["DATABASE_URL"], bin_id
        self.holder: SqliteLockHolder | psycopg.Connection | None = None

    def __enter__(self) -> WriteLock:
        if self.url.startswith("sqlite:///"):
            self.holder = SqliteLockHolder(self.url.removeprefix("sqlite:///"))
            self.holder.hold()
        else:  # the writer numbers a batch with the bin's row locked FOR UPDATE
            self.holder = psycopg.connect(self.url.replace("+psycopg", ""))
            self.holder.execute("SELECT 1 FROM bins WHERE id = %s FOR UPDATE", (self.bin_id,))
        return self

    def __exit__(self, *exc: object) -> None:
        if isinstance(self.holder, SqliteLockHolder):
            self.holder.release()
        elif self.holder is not None:
            self.holder.rollback()
            self.holder.close()


IN_FLIGHT = 1 * MIB
EACH = 400_000  # three of them pass IN_FLIGHT, two do not


@pytest.fixture
def capped(tmp_path):
    env = {
        "HOOKSCOPE_MAX_BODY_BYTES": str(512 * 1024),
        "HOOKSCOPE_MAX_BODY_BYTES_IN_FLIGHT": str(IN_FLIGHT),
    }
    with Gunicorn(tmp_path, env=env) as running:
        yield running


def test_bodies_waiting_for_their_commit_count_against_the_cap(capped):
    """Three whole bodies arrive while the database holds the write lock: two fit the cap and
    wait for their commit; the third is refused, and none is lost once the lock is released."""
    server = capped
    bin_ = server.create_bin()
    bodies = [os.urandom(EACH) for _ in range(3)]
    socks = [socket.create_connection(("127.0.0.1", server.port), timeout=30) for _ in bodies]
    try:
        with WriteLock(server, bin_["id"]):
            for sock, body in zip(socks, bodies, strict=True):
                sock.sendall(head(f"/h/{bin_['id']}/queued", len(body)) + body)
            readable, _, _ = select.select(socks, [], [], 10)
            assert len(readable) == 1, "one of the three must be refused while two wait"
            [refused] = readable
            answer = read_answer(refused)
            time.sleep(0.5)
            assert select.select(socks, [], [], 0)[0] == [refused]  # the others still wait
        answers = {i: read_answer(s) for i, s in enumerate(socks) if s is not refused}
    finally:
        for sock in socks:
            sock.close()

    assert answer.startswith(b"HTTP/1.1 503 ")
    assert b"\r\nRetry-After: " in answer
    assert b"HOOKSCOPE_MAX_BODY_BYTES_IN_FLIGHT" in answer
    assert b"nothing was stored" in answer
    stored = {}
    for i, got in answers.items():
        assert got.startswith(b"HTTP/1.1 200 "), got[:300]
        seq = got.split(b"X-Hookscope-Seq: ", 1)[1].split(b"\r\n", 1)[0].decode()
        stored[seq] = i
        assert raw_body(server, bin_["id"], seq) == bodies[i]
    listed = requests.get(
        f"{server.url}/api/v1/bins/{bin_['id']}/requests", auth=server.auth, timeout=10
    ).json()["requests"]
    assert sorted(r["seq"] for r in listed) == sorted(int(s) for s in stored)

    # The budget is whole again: a body of the same size is taken.
    again = requests.post(bin_["capture_url"], data=bodies[0], timeout=30)
    assert again.status_code == 200, again.text
