"""Token buckets for the capture flood limits: in this process's memory, or in Redis.

A bucket holds up to ``burst`` tokens and gains ``per_second`` of them continuously; a capture
takes one from each of its buckets (its sender address's and its bin's), all or none. So a
provider's burst is taken whole up to the burst size, however fast it comes, and a flood is held
to the rate once the burst is spent. The ``limits`` library's windows cannot say both at once: a
fixed or sliding window of N a minute refuses a burst bigger than N, and one big enough for the
burst lets a flood send that much every minute.

In Redis one script takes from both buckets atomically, by Redis's own clock, in one round trip;
several processes (or hosts) share the same buckets. When Redis does not answer, this process
counts alone for a few seconds rather than refuse or fail the capture.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from app.config_parsers import Rate

log = logging.getLogger("hookscope.limits")
# Memory: above this many buckets, full ones are forgotten (a full bucket is a fresh one).
SWEEP_ABOVE = 10_000
# Redis: how long this process counts alone after Redis failed to answer.
REDIS_RETRY_SECONDS = 5.0
REDIS_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Empty:
    """The bucket (by its index in the request) that had no token, and how long until it has."""

    index: int
    seconds: float


class Buckets(Protocol):
    def take(self, wanted: Sequence[tuple[str, Rate]]) -> Empty | None:
        """Take a token from each bucket, or from none; None when every bucket had one."""
        ...


class MemoryBuckets:
    """Buckets in this process; its only limits when there is no Redis."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # key -> (tokens, when counted, when full again)
        self._state: dict[str, tuple[float, float, float]] = {}
        self._lock = threading.Lock()

    def take(self, wanted: Sequence[tuple[str, Rate]]) -> Empty | None:
        with self._lock:
            now = self._clock()
            levels = []
            for index, (key, rate) in enumerate(wanted):
                tokens, at, _ = self._state.get(key, (rate.burst, now, now))
                tokens = min(rate.burst, tokens + (now - at) * rate.per_second)
                if tokens < 1:
                    return Empty(index, (1 - tokens) / rate.per_second)
                levels.append(tokens)
            for (key, rate), tokens in zip(wanted, levels, strict=True):
                left = tokens - 1
                self._state[key] = (left, now, now + (rate.burst - left) / rate.per_second)
            if len(self._state) > SWEEP_ABOVE:
                self._sweep(now)
        return None

    def _sweep(self, now: float) -> None:
        self._state = {k: v for k, v in self._state.items() if v[2] > now}

    def __len__(self) -> int:
        return len(self._state)


# KEYS: the buckets; ARGV: per_second and burst for each. Returns {0} when every bucket gave a
# token, else {index (1-based), seconds until it has one}. Redis's clock, so hosts agree.
_TAKE = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local levels = {}
for i = 1, #KEYS do
  local rate, burst = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local held = redis.call('HMGET', KEYS[i], 'tokens', 'at')
  local tokens, at = tonumber(held[1]), tonumber(held[2])
  if tokens == nil or at == nil then tokens, at = burst, now end
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
  if tokens < 1 then return {i, tostring((1 - tokens) / rate)} end
  levels[i] = tokens
end
for i = 1, #KEYS do
  local rate, burst = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local left = levels[i] - 1
  redis.call('HSET', KEYS[i], 'tokens', string.format('%.6f', left),
             'at', string.format('%.6f', now))
  redis.call('PEXPIRE', KEYS[i], math.ceil((burst - left) / rate * 1000) + 1000)
end
return {0}
"""


class RedisBuckets:
    """Buckets in Redis, shared by every process that uses the same REDIS_URL."""

    def __init__(self, url: str, prefix: str = "hookscope:bucket:") -> None:
        self._url = url
        self._prefix = prefix
        self._script: Any = None
        self._alone = MemoryBuckets()
        self._alone_until = float("-inf")

    def _take_script(self) -> Any:
        # Made on first use, in the worker process: a connection pool must not cross a fork.
        if self._script is None:
            import redis

            client = redis.Redis.from_url(
                self._url,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
            self._script = client.register_script(_TAKE)
        return self._script

    def take(self, wanted: Sequence[tuple[str, Rate]]) -> Empty | None:
        if time.monotonic() < self._alone_until:
            return self._alone.take(wanted)
        import redis

        args: list[float | int] = []
        for _, rate in wanted:
            args += [rate.per_second, rate.burst]
        try:
            answer = self._take_script()(keys=[self._prefix + k for k, _ in wanted], args=args)
        except redis.RedisError as err:
            log.warning(
                "flood limits: Redis did not answer (%s); counting in this process for %d s",
                err.__class__.__name__,
                REDIS_RETRY_SECONDS,
            )
            self._alone_until = time.monotonic() + REDIS_RETRY_SECONDS
            return self._alone.take(wanted)
        if int(answer[0]) == 0:
            return None
        return Empty(int(answer[0]) - 1, float(answer[1]))


def buckets_for(redis_url: str) -> Buckets:
    """Redis's buckets when several processes share the work, else this process's."""
    return RedisBuckets(redis_url) if redis_url else MemoryBuckets()
