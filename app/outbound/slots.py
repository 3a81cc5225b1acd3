"""How many outbound calls may be in flight: per process, and per bin within it.

Replays and auto-forwards share the budget. Counting needs no lock: under gevent nothing else
runs between the check and the count (no I/O in between), and outside it calls are serial.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

PROCESS_SETTING = "HOOKSCOPE_OUTBOUND_CONCURRENCY"
PER_BIN_SETTING = "HOOKSCOPE_OUTBOUND_CONCURRENCY_PER_BIN"


class Busy(Exception):
    """No slot is free; the message says which limit and which setting."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Slots:
    """Counts outbound calls in flight in this process."""

    def __init__(self, per_process: int, per_bin: int) -> None:
        self.per_process = per_process
        self.per_bin = per_bin
        self.in_flight = 0
        self.by_bin: Counter[str] = Counter()

    def free_for(self, bin_id: str) -> bool:
        """Tell whether a call for this bin could start now."""
        return self.in_flight < self.per_process and self.by_bin[bin_id] < self.per_bin

    def refusal(self, bin_id: str) -> str | None:
        """Say why a call for this bin cannot start now; None when it can."""
        if self.by_bin[bin_id] >= self.per_bin:
            return (
                f"this bin already has {self.by_bin[bin_id]} outbound requests in flight, the "
                f"most this server allows ({PER_BIN_SETTING}); try again when one has finished"
            )
        if self.in_flight >= self.per_process:
            return (
                f"this server already has {self.in_flight} outbound requests in flight, the "
                f"most it allows ({PROCESS_SETTING}); try again shortly"
            )
        return None

    def take(self, bin_id: str) -> None:
        """Count a call as started; raise Busy when no slot is free."""
        refused = self.refusal(bin_id)
        if refused:
            raise Busy(refused)
        self.in_flight += 1
        self.by_bin[bin_id] += 1

    def give_back(self, bin_id: str) -> None:
        self.in_flight -= 1
        self.by_bin[bin_id] -= 1
        if not self.by_bin[bin_id]:
            del self.by_bin[bin_id]

    @contextmanager
    def held(self, bin_id: str) -> Iterator[None]:
        """Hold a slot for the duration of a call; raise Busy when none is free."""
        self.take(bin_id)
        try:
            yield
        finally:
            self.give_back(bin_id)
