"""Token buckets behind the capture flood limits: a burst taken whole, then the rate; in memory
with a clock the test turns, and in a real Redis (HOOKSCOPE_TEST_REDIS_URL) shared by two users."""

from __future__ import annotations

import os
import uuid

import pytest
from engines import scaleout_unavailable
from harness import free_port

from app import config
from app.config import ConfigError
from app.config_parsers import parse_capture_rate
from app.ingest import buckets as buckets_module
from app.ingest.buckets import MemoryBuckets, RedisBuckets

REDIS = os.environ.get("HOOKSCOPE_TEST_REDIS_URL")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def taken(buckets, wanted, times: int) -> int:
    return sum(buckets.take(wanted) is None for _ in range(times))


@pytest.mark.parametrize(
    ("text", "per_second", "burst"),
    [
        ("600/minute", 10, 600),
        ("1200/minute burst 6000", 20, 6000),
        ("1200 per minute  BURST 6_000", 20, 6000),
        ("10/5 seconds burst 3", 2, 3),
        ("1/hour burst 20", 1 / 3600, 20),
    ],
)
def test_a_rate_is_read_with_or_without_a_burst(text, per_second, burst):
    rate = parse_capture_rate(text)
    assert (rate.per_second, rate.burst) == (pytest.approx(per_second), burst)


@pytest.mark.parametrize(
    "text", ["lots", "burst 5", "10/minute burst 0", "10/minute burst", "1/second;2/minute"]
)
def test_a_bad_rate_fails_at_start_naming_the_setting(tmp_path, text):
    with pytest.raises(ConfigError, match="HOOKSCOPE_RATE_LIMIT_PER_BIN"):
        config.from_environment(str(tmp_path), {"HOOKSCOPE_RATE_LIMIT_PER_BIN": text})


def test_the_defaults_take_two_bursts_of_2000_at_once_through_one_address(tmp_path):
    settings = config.from_environment(str(tmp_path), {})
    per_address = parse_capture_rate(settings["HOOKSCOPE_RATE_LIMIT_PER_ADDRESS"])
    per_bin = parse_capture_rate(settings["HOOKSCOPE_RATE_LIMIT_PER_BIN"])
    buckets = MemoryBuckets(Clock())  # the clock stands still: a burst in no time at all
    first = [("address:127.0.0.1", per_address), ("bin:a", per_bin)]
    second = [("address:127.0.0.1", per_address), ("bin:b", per_bin)]
    assert taken(buckets, first, 2000) == 2000
    assert taken(buckets, second, 2000) == 2000
    # A flood into one bin stops at its burst; what is left of the address's goes on serving.
    assert taken(buckets, first, 5000) == per_bin.burst - 2000


def test_a_burst_is_taken_whole_then_the_rate():
    clock = Clock()
    buckets = MemoryBuckets(clock)
    wanted = [("bin:x", parse_capture_rate("60/minute burst 100"))]
    assert taken(buckets, wanted, 150) == 100
    empty = buckets.take(wanted)
    assert empty is not None and empty.index == 0 and empty.seconds == pytest.approx(1.0)
    clock.now += 10
    assert taken(buckets, wanted, 50) == 10
    clock.now += 3600  # a quiet hour refills it to the burst, not beyond
    assert taken(buckets, wanted, 500) == 100


def test_a_capture_takes_from_every_bucket_or_from_none():
    buckets = MemoryBuckets(Clock())
    address = ("address:198.51.100.7", parse_capture_rate("1/hour burst 5"))
    one_bin = ("bin:small", parse_capture_rate("1/hour burst 3"))
    assert taken(buckets, [address, one_bin], 4) == 3
    assert buckets.take([address, one_bin]).index == 1  # the bin's was empty
    # The refused ones took nothing from the address: two are left for another bin.
    other = ("bin:other", parse_capture_rate("1/hour burst 3"))
    assert taken(buckets, [address, other], 5) == 2


def test_full_buckets_are_forgotten_when_there_are_many(monkeypatch):
    monkeypatch.setattr(buckets_module, "SWEEP_ABOVE", 100)
    clock = Clock()
    buckets = MemoryBuckets(clock)
    rate = parse_capture_rate("60/minute burst 10")
    for i in range(100):
        buckets.take([(f"address:{i}", rate)])
    clock.now += 1  # one token back each: full again
    buckets.take([("address:new", rate)])
    assert len(buckets) == 1


@pytest.fixture
def redis_url():
    if not REDIS:
        scaleout_unavailable("needs HOOKSCOPE_TEST_REDIS_URL")
    return REDIS


def test_redis_buckets_are_shared_by_every_process_using_them(redis_url):
    prefix = f"hookscope-test:{uuid.uuid4().hex}:"
    one, two = RedisBuckets(redis_url, prefix), RedisBuckets(redis_url, prefix)
    address = ("address:203.0.113.5", parse_capture_rate("1/hour burst 10"))
    one_bin = ("bin:shared", parse_capture_rate("1/hour burst 6"))
    assert taken(one, [address, one_bin], 4) + taken(two, [address, one_bin], 4) == 6
    refused = two.take([address, one_bin])
    assert refused.index == 1 and refused.seconds > 3000  # one token an hour
    # All or none in Redis too: the address has 4 left for another bin.
    assert taken(one, [address, ("bin:other", one_bin[1])], 10) == 4

    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        # Buckets expire once they would be full again: Redis keeps nothing for idle senders.
        assert 0 < client.pttl(prefix + "bin:shared") <= 6 * 3600 * 1000 + 1000
    finally:
        client.delete(*client.keys(prefix + "*"))
        client.close()


def test_without_redis_each_process_counts_alone(caplog):
    gone = RedisBuckets(f"redis://127.0.0.1:{free_port()}/0", "hookscope-test:")
    wanted = [("bin:x", parse_capture_rate("1/hour burst 3"))]
    assert taken(gone, wanted, 5) == 3
    assert "counting in this process" in caplog.text
