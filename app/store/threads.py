"""Blocking database work in a native thread (gevent's ThreadPool), its errors raised in the caller.

Raised inside the thread, an error reaches the caller all the same, but gevent's hub also prints
it as an error of its own: with the disk read-only, a traceback a second in the log for every
loop that retries (the recorder's writer and indexer, the forwarder's sweep), for errors they
handle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class _Raised:
    error: BaseException


def _outcome(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except BaseException as err:  # handed to the caller's greenlet, raised there
        return _Raised(err)


def run(pool: Any, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` in ``pool``'s thread; return what it returned, or raise what it raised."""
    outcome = pool.apply(_outcome, (fn, *args))
    if isinstance(outcome, _Raised):
        raise outcome.error
    return outcome
