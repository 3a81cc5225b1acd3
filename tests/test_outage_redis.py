"""Redis stopped and started under running servers: captures stored and answered 2xx, flood
limits counted in each process meanwhile, never a 500; live events resume, pages catch up by seq.

Each test runs a redis-server of its own (tests/engines.py): the shared one serves other tests.
"""

from __future__ import annotations

import re
import threading

import pytest
import redis
import requests
import socketio
from engines import PrivateRedis, wait_for
from harness import Gunicorn, database_url_for, drop_postgres_database


@pytest.fixture
def private_redis():
    server = PrivateRedis().start()
    yield server
    server.stop()


class Page:
    """What a bin page does with the live stream (static/js/live.js): watch from the highest seq
    it has, keep each seq once, and on ``resync`` watch again from there."""

    def __init__(self, server: Gunicorn, bin_: dict) -> None:
        self.bin = bin_
        self.seqs: list[int] = []
        self.lock = threading.Lock()
        self.resyncs = 0
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("captured", self.captured)
        self.sio.on("resync", self.resync)
        self.sio.connect(server.url, transports=["websocket"], wait_timeout=10)
        ack = self.sio.call("watch", self.request(), timeout=10)
        assert ack["ok"] is True, ack

    def request(self) -> dict:
        with self.lock:
            after = max(self.seqs, default=0)
        return {"bin": self.bin["id"], "after": after, "key": self.bin["read_key"]}

    def captured(self, summary: dict) -> None:
        with self.lock:
            if summary["seq"] not in self.seqs:
                self.seqs.append(summary["seq"])

    def resync(self, _news: dict) -> None:
        self.resyncs += 1
        self.sio.emit("watch", self.request())

    def has(self, seqs: list[int]) -> bool:
        with self.lock:
            return sorted(self.seqs) == seqs

    def close(self) -> None:
        self.sio.disconnect()


def capture(server: Gunicorn, bin_: dict, body: bytes) -> requests.Response:
    return requests.post(f"{server.url}/h/{bin_['id']}", data=body, timeout=15)


def stored_seqs(server: Gunicorn, bin_: dict) -> list[int]:
    url = f"{server.url}/api/v1/bins/{bin_['id']}/requests"
    page = requests.get(url, auth=server.auth, timeout=10)
    assert page.status_code == 200
    return sorted(r["seq"] for r in page.json()["requests"])


def no_server_errors(*servers: Gunicorn) -> None:
    for server in servers:
        log = server.log_text()
        assert "Traceback" not in log, log[-3000:]
        assert not re.search(r'"status": 5\d\d|" 5\d\d \d', log), log[-3000:]


@pytest.fixture
def two_hosts(tmp_path, private_redis):
    """Two gunicorn masters (a worker each) on one database and the test's own Redis."""
    database = database_url_for(tmp_path)
    env = {"DATABASE_URL": database, "REDIS_URL": private_redis.url}
    a = Gunicorn(tmp_path / "a", env=env)
    b = Gunicorn(tmp_path / "b", env=env)
    a.workdir.mkdir(), b.workdir.mkdir()
    try:
        a.start()  # first: it runs the migrations
        b.start()
        b.auth = a.auth
        yield a, b
    finally:
        a.stop(), b.stop()
        if database.startswith("postgresql"):
            drop_postgres_database(database)


def test_captures_are_stored_and_pages_catch_up_while_redis_is_away(two_hosts, private_redis):
    a, b = two_hosts
    bin_ = a.create_bin()
    page = Page(b, bin_)  # on the other host: its events come through Redis
    try:
        assert capture(a, bin_, b"before").status_code == 200
        wait_for(lambda: page.has([1]), 15, "the first capture reaching the other host")

        private_redis.stop()
        answers = [capture(a, bin_, b"during %d" % i) for i in range(5)]
        assert [r.status_code for r in answers] == [200] * 5
        assert [int(r.headers["X-Hookscope-Seq"]) for r in answers] == [2, 3, 4, 5, 6]
        # Everything stored, and readable on both hosts.
        assert stored_seqs(a, bin_) == stored_seqs(b, bin_) == [1, 2, 3, 4, 5, 6]
        # Ready: captures are stored; Redis reported as the part that is away.
        ready = requests.get(a.url + "/readyz", timeout=10)
        assert ready.status_code == 200
        assert ready.json()["degraded"] == ["redis"]
        assert ready.json()["checks"]["redis"]["ok"] is False
        assert requests.get(b.url + "/", timeout=10).ok  # pages too

        private_redis.start()
        # The page is told to watch again and catches up from the highest seq it had.
        wait_for(lambda: page.has([1, 2, 3, 4, 5, 6]), 60, "the page catching up", every=0.1)
        assert page.resyncs >= 1
        # And live events flow again.
        assert capture(a, bin_, b"after").status_code == 200
        wait_for(lambda: page.has([1, 2, 3, 4, 5, 6, 7]), 15, "a live event after Redis")
    finally:
        page.close()
    assert requests.get(a.url + "/readyz", timeout=10).json().get("degraded") is None
    no_server_errors(a, b)


def test_flood_limits_count_in_each_process_while_redis_is_away(tmp_path, private_redis):
    limited = {
        "REDIS_URL": private_redis.url,
        "HOOKSCOPE_RATE_LIMITS": "true",
        # Per hour: the window must not roll over during the test.
        "HOOKSCOPE_RATE_LIMIT_PER_ADDRESS": "4/hour",
        "HOOKSCOPE_RATE_LIMIT_PER_BIN": "off",
        "HOOKSCOPE_RATE_LIMIT_CREATE": "100/hour",
    }
    with Gunicorn(tmp_path, env=limited) as server:
        bin_ = server.create_bin()
        assert [capture(server, bin_, b"x").status_code for _ in range(2)] == [200, 200]
        shared = redis.Redis.from_url(private_redis.url)
        assert any(b":address:" in key for key in shared.keys()), "counted in Redis"
        shared.close()

        private_redis.stop()
        # Counted afresh in the process: 4 more, then refused as a flood, saying why.
        statuses = [capture(server, bin_, b"x") for _ in range(5)]
        assert [r.status_code for r in statuses] == [200, 200, 200, 200, 429]
        assert "HOOKSCOPE_RATE_LIMIT_PER_ADDRESS" in statuses[-1].text
        assert int(statuses[-1].headers["Retry-After"]) >= 1
        # Routes with a limit fall back too: bins can still be made.
        assert requests.post(server.url + "/api/v1/bins", timeout=10).status_code == 201

        private_redis.start()
        shared = redis.Redis.from_url(private_redis.url)

        def counted_in_redis_again() -> bool:
            status = capture(server, bin_, b"x").status_code
            assert status in (200, 429)
            return status == 200 and any(b":address:" in k for k in shared.keys())

        wait_for(counted_in_redis_again, 60, "counting in Redis again", every=0.5)
        shared.close()
    assert "counting in this process" in server.log_text()
    no_server_errors(server)
