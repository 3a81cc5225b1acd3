"""The capture's answering parts: the cheap handshake check, and the failure counts."""

from __future__ import annotations

import os
import uuid

import pytest
import test_respond_handshakes as documented

from app.ingest.counters import MemoryCounter, RedisCounter
from app.ingest.respond import DEFAULT_RESPONDER, RequestView
from app.ingest.respond.handshakes import might_be

REDIS = os.environ.get("HOOKSCOPE_TEST_REDIS_URL")
HANDSHAKES = [
    documented.SLACK,
    documented.GRAPH,
    documented.DROPBOX,
    documented.TWITCH,
    documented.META,
    documented.ZOOM,
]


@pytest.mark.parametrize("request_", HANDSHAKES, ids=lambda r: r.path)
def test_the_cheap_check_lets_every_documented_handshake_through(request_):
    assert might_be(request_.method, request_.query_string, request_.body)
    assert DEFAULT_RESPONDER.respond(request_).handshake is not None


@pytest.mark.parametrize(
    "request_",
    [
        RequestView("POST", "/", "", [], b'{"type": "charge.succeeded", "id": "evt_1"}'),
        RequestView("POST", "/", "a=1", [], b"not json, but says challenge"),
        RequestView("PUT", "/", "challenge=x", [], b'{"challenge": "x"}'),
        RequestView("GET", "/", "page=2", [], b""),
        RequestView("POST", "/", "", [], b'{"challenge": "x"' + b" " * 5000 + b"}"),
    ],
)
def test_the_cheap_check_stops_ordinary_captures(request_):
    assert not might_be(request_.method, request_.query_string, request_.body)


def test_memory_counts_per_key_and_forgets_the_least_recent():
    counter = MemoryCounter(max_keys=2)
    assert [counter.incr("a"), counter.incr("a"), counter.incr("b")] == [1, 2, 1]
    counter.incr("c")  # "a" is now the least recently counted, and goes
    assert (counter.incr("b"), counter.incr("a")) == (2, 1)


def test_memory_counts_start_over_after_their_time(monkeypatch):
    counter = MemoryCounter(seconds=10)
    now = [1000.0]
    monkeypatch.setattr("app.ingest.counters.time.monotonic", lambda: now[0])
    assert (counter.incr("k"), counter.incr("k")) == (1, 2)
    now[0] += 11
    assert counter.incr("k") == 1


@pytest.mark.skipif(not REDIS, reason="needs HOOKSCOPE_TEST_REDIS_URL")
def test_redis_counts_are_shared_and_expire():
    import redis

    key = f"test-{uuid.uuid4().hex}"
    one, other = RedisCounter(REDIS, seconds=60), RedisCounter(REDIS, seconds=60)
    assert [one.incr(key), other.incr(key), one.incr(key)] == [1, 2, 3]
    client = redis.Redis.from_url(REDIS)
    try:
        assert 0 < client.ttl("hookscope:fail:" + key) <= 60
    finally:
        client.delete("hookscope:fail:" + key)
        client.close()


def test_redis_out_of_reach_counts_in_this_process(caplog):
    counter = RedisCounter("redis://127.0.0.1:1/0")  # nothing listens on port 1
    assert (counter.incr("k"), counter.incr("k")) == (1, 2)
    assert "Redis did not count" in caplog.text
