"""Ingest throughput: 1 KB JSON POSTs to a bin's capture URL, then check every 2xx was stored."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import requests
from common import cpu_seconds

HERE = Path(__file__).resolve().parent
LUA = HERE / "post.lua"
BODY = b'{"event":"bench.ping","id":12345,"pad":"' + b"x" * (1024 - 42) + b'"}'
WRK = shutil.which("wrk")


def generator() -> str:
    """Name the load generator this machine will use."""
    return "wrk" if WRK else "asyncio"


def run_wrk(
    url: str, connections: int, seconds: float, threads: int = 2, paths: list[str] | None = None
) -> dict:
    """Run wrk with post.lua; return its counts and latency percentiles (microseconds).

    ``paths``: send to these paths of ``url``'s server in turn instead of to ``url`` alone.
    """
    cmd = [
        WRK, f"-t{min(threads, connections)}", f"-c{connections}", f"-d{seconds:g}s",
        "--timeout", "5s", "--latency", "-s", str(LUA), url,
    ]  # fmt: skip
    env = {**os.environ, "HOOKSCOPE_BENCH_PATHS": ",".join(paths or [])}
    out = subprocess.run(
        cmd, capture_output=True, text=True, timeout=seconds + 60, check=True, env=env
    )
    line = next(x for x in out.stdout.splitlines() if x.startswith("BENCH_JSON "))
    result = json.loads(line.removeprefix("BENCH_JSON "))
    assert result["body_bytes"] == len(BODY), result
    return result


async def _one_connection(host: str, port: int, path: str, stop: float, out: dict) -> None:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            writer.write(head + BODY)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            out["lat"].append(time.perf_counter() - t0)
            status = int(status_line.split()[1])
            out["ok_2xx" if 200 <= status < 300 else "non_2xx"] += 1
    except (OSError, asyncio.IncompleteReadError, IndexError, ValueError):
        out["err_read"] += 1
    finally:
        writer.close()


async def _asyncio_load(url: str, connections: int, seconds: float) -> dict:
    parts = urlsplit(url)
    out = {"lat": [], "ok_2xx": 0, "non_2xx": 0, "err_read": 0}
    start = time.monotonic()
    await asyncio.gather(
        *(
            _one_connection(parts.hostname, parts.port, parts.path, start + seconds, out)
            for _ in range(connections)
        )
    )
    lat = sorted(out.pop("lat"))
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [0.0] * 99
    return {
        **out,
        "requests": out["ok_2xx"] + out["non_2xx"],
        "duration_us": int((time.monotonic() - start) * 1e6),
        "err_connect": 0, "err_write": 0, "err_status": out["non_2xx"], "err_timeout": 0,
        "p50_us": int(q[49] * 1e6), "p90_us": int(q[89] * 1e6), "p99_us": int(q[98] * 1e6),
        "max_us": int((lat[-1] if lat else 0) * 1e6),
    }  # fmt: skip


def bearer(key: str) -> dict[str, str]:
    """Read a bin as its owner: with its read key."""
    return {"Authorization": f"Bearer {key}"}


def run_load(url: str, connections: int, seconds: float) -> dict:
    """Drive POST load with wrk, or with a slower asyncio client where wrk is not installed."""
    if WRK:
        return run_wrk(url, connections, seconds)
    return asyncio.run(_asyncio_load(url, connections, seconds))


def last_seq(base: str, bin_id: str, key: str) -> int:
    r = requests.get(f"{base}/api/v1/bins/{bin_id}", headers=bearer(key), timeout=10)
    r.raise_for_status()
    return r.json()["last_seq"]


def settled_last_seq(
    base: str, bin_id: str, key: str, quiet: float = 0.5, limit: float = 15
) -> int:
    """Wait until requests still in flight when the generator stopped have been stored."""
    deadline = time.monotonic() + limit
    seen = last_seq(base, bin_id, key)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = last_seq(base, bin_id, key)
        if now == seen:
            return now
        seen = now
    return seen


def stored_rows(base: str, bin_id: str, key: str) -> tuple[int, int]:
    """Page through the bin's requests; return (rows, distinct seqs)."""
    seqs: set[int] = set()
    rows, before = 0, None
    with requests.Session() as s:
        s.headers.update(bearer(key))
        while True:
            params = {"limit": 200, **({"before": before} if before is not None else {})}
            r = s.get(f"{base}/api/v1/bins/{bin_id}/requests", params=params, timeout=30)
            r.raise_for_status()
            page = r.json()
            rows += len(page["requests"])
            seqs.update(x["seq"] for x in page["requests"])
            before = page["next_before"]
            if before is None:
                return rows, len(seqs)


class TimedLoad(threading.Thread):
    """One bin's load (``ingest``) in a thread of its own, with its worker's CPU over the load."""

    def __init__(self, base: str, made: dict, worker: int, c: int, seconds: float) -> None:
        super().__init__()
        self.base, self.made, self.worker, self.c, self.seconds = base, made, worker, c, seconds
        self.spent = 0.0
        self.got: dict = {}

    def run(self) -> None:
        cpu0 = cpu_seconds(self.worker)

        def loaded() -> None:
            self.spent = cpu_seconds(self.worker) - cpu0

        made = self.made
        self.got = ingest(
            self.base, made["id"], made["read_key"], self.c, self.seconds, False, loaded
        )

    @property
    def cpu_us_per_capture(self) -> float:
        return 1e6 * self.spent / max(1, self.got["stored_last_seq"])


def together(loads: list[TimedLoad]) -> None:
    """Run the loads at once (each on its own server): the same seconds of the machine."""
    for each in loads:
        each.start()
    for each in loads:
        each.join()


def ingest(
    base: str,
    bin_id: str,
    key: str,
    connections: int,
    seconds: float,
    page: bool,
    loaded: Callable[[], object] | None = None,
) -> dict:
    """Load one fresh bin and account for every capture: answered 2xx vs stored (``loaded``:
    as for ``ingest_bins``)."""
    return ingest_bins(base, [(bin_id, key)], connections, seconds, page, loaded)


def ingest_bins(
    base: str,
    bins: list[tuple[str, str]],
    connections: int,
    seconds: float,
    page: bool,
    loaded: Callable[[], object] | None = None,
) -> dict:
    """Load fresh bins (id, read key) in turn and account for every capture, summed over them.

    ``loaded`` is called as soon as the load generator stops, before the accounting's own requests:
    what it measures (CPU, say) covers the load alone.
    """
    if len(bins) == 1:
        load = run_load(f"{base}/h/{bins[0][0]}", connections, seconds)
    else:
        if not WRK:
            raise RuntimeError("spreading load over several bins needs wrk")
        paths = [f"/h/{bin_id}" for bin_id, _ in bins]
        load = run_wrk(base + paths[0], connections, seconds, paths=paths)
    if loaded is not None:
        loaded()
    stored, rows, distinct = 0, 0 if page else None, 0 if page else None
    for bin_id, key in bins:
        stored += settled_last_seq(base, bin_id, key)
        if page:
            bin_rows, bin_distinct = stored_rows(base, bin_id, key)
            rows += bin_rows
            distinct += bin_distinct
    extra = stored - load["ok_2xx"]
    return {
        **load_figures(load, connections),
        "stored_last_seq": stored,
        "stored_rows": rows,
        "distinct_seqs": distinct,
        # wrk stops with up to one request per connection unanswered; the server still stores
        # those, so stored may exceed 2xx by at most `connections` (plus any timed-out requests).
        "unanswered_but_stored": extra,
        "lost": max(0, -extra),
        "accounting_ok": 0 <= extra <= connections + load["err_timeout"] + load["err_read"]
        and (rows is None or rows == distinct == stored),
    }


def bare(url: str, connections: int, seconds: float) -> dict:
    """Load the bare reference app (bench/bare_app.py) as a bin is loaded; nothing is stored."""
    return load_figures(run_load(url, connections, seconds), connections)


def load_figures(load: dict, connections: int) -> dict:
    """Answers per second, latency and errors of one load run (2xx answers count as captures)."""
    seconds_run = load["duration_us"] / 1e6
    return {
        "connections": connections,
        "seconds": round(seconds_run, 2),
        "captures_per_s": round(load["ok_2xx"] / seconds_run, 1),
        "p50_ms": load["p50_us"] / 1000,
        "p99_ms": load["p99_us"] / 1000,
        "max_ms": load["max_us"] / 1000,
        "ok_2xx": load["ok_2xx"],
        "non_2xx": load["non_2xx"],
        "socket_errors": sum(load[k] for k in ("err_connect", "err_read", "err_write")),
        "timeouts": load["err_timeout"],
        "raw": load,
    }
