"""The body bytes a process holds for captures, counted against HOOKSCOPE_MAX_BODY_BYTES_IN_FLIGHT.

A body counts from its first byte read until its batch is committed (or it is refused): while it
is read, and while it waits in the recorder's queue. Each capture takes a ``Hold``; reading adds
to it as bytes arrive, and the recorder releases it once the batch's transaction has ended. So
the queue of bodies waiting for the writer is bounded by the same budget as the reading.
"""

from __future__ import annotations

import threading


class Budget:
    """One per process (the recorder's): how many body bytes are held, and the most allowed."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.held = 0
        # Under gevent every hold is taken and released on the event loop's thread, where this is
        # gevent's lock and never waits; in-process (tests, the CLI) threads share it.
        self._lock = threading.Lock()

    @property
    def free(self) -> int:
        return self.cap - self.held

    def hold(self) -> Hold:
        """A new, empty hold for one capture's body."""
        return Hold(self)


class Hold:
    """The bytes one capture's body holds of the budget."""

    __slots__ = ("budget", "bytes")

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.bytes = 0

    def take(self, n: int) -> bool:
        """Count ``n`` more bytes; False, counting nothing, when they would pass the cap."""
        budget = self.budget
        with budget._lock:
            if budget.held + n > budget.cap:
                return False
            budget.held += n
        self.bytes += n
        return True

    def release(self) -> None:
        """Give back everything held (again: nothing)."""
        if self.bytes:
            with self.budget._lock:
                self.budget.held -= self.bytes
            self.bytes = 0
