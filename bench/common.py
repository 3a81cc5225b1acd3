"""What the scenarios share: gunicorn's processes in /proc, server-log problems, timings, tables,
and the bare reference server."""

from __future__ import annotations

import math
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent

# Lines in gunicorn's log that are not access-log lines and say something went wrong.
PROBLEM = re.compile(r"Traceback|\[ERROR\]|\[CRITICAL\]|WORKER TIMEOUT|Exception|locked|Errno")
ACCESS_LINE = re.compile(r'^\S+ - \S+ \[[^\]]+\] "')


def worker_pids(master: int) -> list[int]:
    """Return the gunicorn workers: the master's children."""
    text = Path(f"/proc/{master}/task/{master}/children").read_text()
    return [int(x) for x in text.split()]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_by_process(names: dict[int, str] | None = None) -> dict[tuple[int, int], tuple[str, float]]:
    """Return every live process's CPU seconds so far, keyed by (pid, start time), with its kind.

    The kind is ``names[pid]`` when given, else the command name (comm), with a kernel worker's
    current task left off: a kworker renames itself as it works.
    """
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[tuple[int, int], tuple[str, float]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone meanwhile
            continue
        head, tail = text.rsplit(")", 1)
        pid, comm = head.split(" (", 1)
        fields = tail.split()
        kind = comm.split("/", 1)[0] if comm.startswith("kworker") else comm
        kind = (names or {}).get(int(pid), kind)
        out[(int(pid), int(fields[19]))] = (kind, (int(fields[11]) + int(fields[12])) / tick)
    # Children that have ended and been waited for are in /proc no more: the benches' only such
    # child is the load generator (wrk) once its run is over.
    ended = resource.getrusage(resource.RUSAGE_CHILDREN)
    out[(0, 0)] = ("wrk", ended.ru_utime + ended.ru_stime)
    return out


def cpu_ms_per_item(
    before: dict[tuple[int, int], tuple[str, float]],
    after: dict[tuple[int, int], tuple[str, float]],
    items: int,
) -> dict[str, float]:
    """CPU ms per item of each kind of process between two ``cpu_by_process`` readings.

    A process that started in between counts from zero; one that ended in between is lost.
    """
    used: dict[str, float] = {}
    for key, (kind, seconds) in after.items():
        used[kind] = used.get(kind, 0.0) + seconds - before.get(key, (kind, 0.0))[1]
    return {
        kind: round(1000 * seconds / items, 3)
        for kind, seconds in sorted(used.items(), key=lambda kv: -kv[1])
        if seconds > 0 and items
    }


def machine_busy() -> tuple[int, int]:
    """Return (busy, total) jiffies of the whole machine, for a busy share between two readings."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_pct(before: tuple[int, int], after: tuple[int, int]) -> float:
    total = after[1] - before[1]
    return round(100 * (after[0] - before[0]) / total, 1) if total else 0.0


def memory_kib(pid: int) -> dict[str, int]:
    """Read VmRSS (resident now) and VmHWM (peak resident since start or the last reset), KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0])
    return out


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux 4.0+, our own process); tell whether it worked."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class RssSampler:
    """Sample a process's VmRSS in a thread; ``peak_kib`` is the highest value seen."""

    def __init__(self, pid: int, every: float = 0.01) -> None:
        self.pid, self.every = pid, every
        self.peak_kib = 0
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        t0 = time.monotonic()
        while not self._stop.is_set():
            try:
                rss = memory_kib(self.pid)["VmRSS"]
            except (OSError, KeyError):
                return
            self.peak_kib = max(self.peak_kib, rss)
            self.samples.append((round(time.monotonic() - t0, 3), rss))
            self._stop.wait(self.every)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def problems(log: str) -> list[str]:
    return [
        line for line in log.splitlines() if PROBLEM.search(line) and not ACCESS_LINE.match(line)
    ]


def timing(samples_s: list[float]) -> dict[str, float | int | None]:
    """Median, p95 (nearest rank) and max of durations in seconds, as milliseconds."""
    if not samples_s:
        return {"n": 0, "median_ms": None, "p95_ms": None, "max_ms": None}
    ordered = sorted(samples_s)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
    return {
        "n": len(ordered),
        "median_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(p95 * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


def mib(kib_or_bytes: float, unit: str = "KiB") -> float:
    return round(kib_or_bytes / (1024 if unit == "KiB" else 1024 * 1024), 1)


# Scenarios comparing two kinds of load (answers, budget) cut it into short rounds: each round
# loads every kind for ROUND_SECONDS, in turns, and a run's figure is the median of the rounds'
# ratios. This machine's speed drifts by a third within a minute, so loads a minute apart compare
# the machine more than the code; a round's loads are seconds apart.
ROUND_SECONDS = 2.0


def rounds_in(seconds: float) -> int:
    """How many rounds a load of ``seconds`` per kind is cut into."""
    return max(1, round(seconds / ROUND_SECONDS))


def print_rows(head: list[str], rows: list[list[object]]) -> None:
    """Print a plain left-aligned table."""
    lines = [head, *[["-" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    for n, line in enumerate(lines):
        print("  ".join(str(c).ljust(widths[i]) for i, c in enumerate(line)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


class BareServer:
    """bench/bare_app.py under gunicorn on ``port``: started, stopped and logged as the app is."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = workdir / f"bare-{port}.log"
        self.proc: subprocess.Popen | None = None
        self.log = None

    def start(self, timeout: float = 30) -> BareServer:
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:bare_app", "bare_app:app"],
            cwd=HERE,
            env={**os.environ, "PORT": str(self.port)},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bare gunicorn exited early:\n{self.log_text()[-4000:]}")
            try:
                if requests.get(self.url, timeout=1).status_code == 200:
                    return self
            except requests.RequestException:  # not up yet, or slow to answer on a busy machine
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"bare gunicorn did not answer in {timeout}s:\n{self.log_text()[-4000:]}"
        )

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log:
            self.log.close()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
