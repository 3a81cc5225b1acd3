"""Counts for "fail the first N requests": shared by every process through Redis, or in memory.

A rehearsal counts the requests that reach it under a key (app/ingest/respond/failure.py names
it: the settings version, the rule, the delivery id). Each count expires COUNT_SECONDS after
its last request, long past any provider's retry schedule (Stripe retries for 3 days). With
REDIS_URL the count is Redis's ``INCR``, so every worker and host counts together; the
embedded default is one process, where a dict does, bounded to MAX_KEYS. When Redis cannot be
reached the count falls back to this process's memory, and says so in the log.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Any, Protocol

log = logging.getLogger("hookscope.capture")
COUNT_SECONDS = 7 * 24 * 3600
MAX_KEYS = 100_000
PREFIX = "hookscope:fail:"


class Counter(Protocol):
    def incr(self, key: str) -> int:
        """Count one more request under ``key``; return the count including it."""


class MemoryCounter:
    """Counts in this process: enough for the embedded default, which is one process."""

    def __init__(self, max_keys: int = MAX_KEYS, seconds: float = COUNT_SECONDS) -> None:
        self._counts: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._max_keys, self._seconds = max_keys, seconds

    def incr(self, key: str) -> int:
        now = time.monotonic()
        count, last = self._counts.pop(key, (0, now))
        count = 1 if now - last > self._seconds else count + 1
        self._counts[key] = (count, now)
        if len(self._counts) > self._max_keys:
            self._counts.popitem(last=False)  # the least recently counted
        return count


class RedisCounter:
    """Counts in Redis, shared by every process: INCR, and the expiry renewed with each one."""

    def __init__(self, url: str, seconds: int = COUNT_SECONDS) -> None:
        import redis

        self._redis: Any = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._seconds = seconds
        self._fallback = MemoryCounter()
        self._errors = (redis.RedisError, OSError)

    def incr(self, key: str) -> int:
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.incr(PREFIX + key)
            pipe.expire(PREFIX + key, self._seconds)
            count, _ = pipe.execute()
            return int(count)
        except self._errors as err:
            log.warning("failure rehearsal: Redis did not count (%s); counted here instead", err)
            return self._fallback.incr(key)


def counter_for(redis_url: str) -> Counter:
    """Return the counter for this configuration: Redis's when REDIS_URL is set."""
    return RedisCounter(redis_url) if redis_url else MemoryCounter()
