"""The gunicorn worker's memory as the kernel counts it (/proc/<pid>/status), for memory tests."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

from harness import Gunicorn


def worker_pid(server: Gunicorn) -> int:
    """The one worker process of ``server``."""
    (pid,) = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text().split()
    return int(pid)


def status_kib(pid: int, field: str) -> int:
    """A ``kB`` field of /proc/<pid>/status: VmRSS (now) or VmHWM (the peak since reset_peak)."""
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+)", text).group(1))


def reset_peak(pid: int) -> None:
    """Make VmHWM start again from the current RSS (Linux 4.0+, a process of our own)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def settled_rss_kib(pid: int) -> int:
    """The worker's RSS once it has stopped changing (the writer and indexer have finished)."""
    last = status_kib(pid, "VmRSS")
    for _ in range(40):
        time.sleep(0.1)
        now = status_kib(pid, "VmRSS")
        if abs(now - last) < 256:
            return now
        last = now
    return last


class PeakRss:
    """The highest RSS of a process while the block runs: VmHWM, and a sampler as a cross-check
    (VmHWM alone misses nothing, but a sampler shows the peak even where clear_refs is refused)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            try:
                self.peak_kib = max(self.peak_kib, status_kib(self.pid, "VmRSS"))
            except (OSError, AttributeError):
                return

    def __enter__(self) -> PeakRss:
        reset_peak(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.peak_kib = max(self.peak_kib, status_kib(self.pid, "VmHWM"))
