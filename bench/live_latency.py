"""Live latency: from a capture's POST being sent to its ``captured`` event at every watcher.

Watchers are python-socketio clients (websocket transport) spread over a few processes, because one
CPython process with 100 sync clients (each with its own reader threads) cannot keep up on its own.
All times come from CLOCK_MONOTONIC (``time.monotonic``), which is shared by every process on Linux.
"""

from __future__ import annotations

import http.client
import multiprocessing as mp
import queue
import statistics
import time
from urllib.parse import urlsplit

BODY = b'{"event":"bench.live","pad":"' + b"x" * 200 + b'"}'


def _watch_process(
    url: str, bin_id: str, key: str, clients: int, ready, stop, arrived, results
) -> None:
    """Connect ``clients`` watchers, report each event's arrival, send everything back at stop."""
    import socketio

    records: list[tuple[int, float]] = []
    errors: list[str] = []
    sios = []
    for _ in range(clients):
        sio = socketio.Client(reconnection=False)

        def on_captured(summary: dict, _records=records) -> None:
            _records.append((summary["seq"], time.monotonic()))
            arrived.release()

        sio.on("captured", on_captured)
        try:
            sio.connect(url, transports=["websocket"], wait_timeout=20)
            ack = sio.call("watch", {"bin": bin_id, "after": None, "key": key}, timeout=20)
            if not ack.get("ok"):
                errors.append(f"watch refused: {ack}")
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            errors.append(f"{type(exc).__name__}: {exc}")
        sios.append(sio)
    ready.put((clients, errors))
    stop.wait(600)
    for sio in sios:
        try:
            sio.disconnect()
        except Exception:  # noqa: BLE001, S110 - shutting down
            pass
    results.put((records, errors))


def _pct(values: list[float], p: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def measure(
    base: str, bin_id: str, key: str, watchers: int, captures: int, processes: int, warmup: int = 10
) -> dict:
    """Send ``captures`` POSTs one at a time, each after every watcher has the previous one."""
    ctx = mp.get_context("spawn")
    ready, results = ctx.Queue(), ctx.Queue()
    stop, arrived = ctx.Event(), ctx.Semaphore(0)
    processes = max(1, min(processes, watchers))
    shares = [watchers // processes + (i < watchers % processes) for i in range(processes)]
    procs = [
        ctx.Process(
            target=_watch_process,
            args=(base, bin_id, key, n, ready, stop, arrived, results),
            daemon=True,
        )
        for n in shares
    ]
    t_connect = time.monotonic()
    for p in procs:
        p.start()
    connected, errors = 0, []
    try:
        for _ in procs:
            n, errs = ready.get(timeout=90)
            connected += n - len(errs)
            errors += errs
    except queue.Empty:
        errors.append("watchers did not connect within 90 s")
    connect_s = time.monotonic() - t_connect

    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    path = f"/h/{bin_id}"
    headers = {"Content-Type": "application/json"}
    sent: dict[int, float] = {}
    post_ms: list[float] = []
    waits_timed_out = 0
    for i in range(warmup + captures):
        t0 = time.monotonic()
        try:
            conn.request("POST", path, BODY, headers)
            resp = conn.getresponse()
            resp.read()
        except OSError as exc:
            errors.append(f"capture POST #{i} failed: {type(exc).__name__}: {exc}; stopped")
            break
        t1 = time.monotonic()
        if resp.status != 200:
            errors.append(f"capture POST answered {resp.status}")
            continue
        seq = int(resp.getheader("X-Hookscope-Seq"))
        if i >= warmup:
            sent[seq] = t0
            post_ms.append((t1 - t0) * 1000)
        # Pace: the next capture goes only after every watcher saw this one (or 2 s passed).
        deadline = t0 + 2.0
        for _ in range(connected):
            if not arrived.acquire(timeout=max(0.0, deadline - time.monotonic())):
                waits_timed_out += 1
                break
    conn.close()

    stop.set()
    records: list[tuple[int, float]] = []
    for _ in procs:
        try:
            recs, errs = results.get(timeout=60)
            records += recs
            errors += errs
        except queue.Empty:
            errors.append("a watcher process did not report back")
    for p in procs:
        p.join(timeout=10)
        if p.is_alive():
            p.kill()

    per_capture: dict[int, list[float]] = {}
    for seq, t in records:
        if seq in sent:
            per_capture.setdefault(seq, []).append((t - sent[seq]) * 1000)
    all_ms = sorted(ms for v in per_capture.values() for ms in v)
    slowest_ms = sorted(max(v) for v in per_capture.values())
    expected = len(sent) * connected
    return {
        "watchers": watchers,
        "connected": connected,
        "watcher_processes": processes,
        "connect_s": round(connect_s, 2),
        "captures": len(sent),
        "events_expected": expected,
        "events_received": len(all_ms),
        "events_missing": expected - len(all_ms),
        "p50_ms": _pct(all_ms, 50),
        "p99_ms": _pct(all_ms, 99),
        "max_ms": all_ms[-1] if all_ms else None,
        # The time until the last watcher had it: what "everyone sees it" costs.
        "all_watchers_p50_ms": _pct(slowest_ms, 50),
        "all_watchers_p99_ms": _pct(slowest_ms, 99),
        "post_p50_ms": _pct(sorted(post_ms), 50),
        "pacing_timeouts": waits_timed_out,
        "errors": errors[:10],
    }
