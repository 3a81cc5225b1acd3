"""Live latency: from a capture's POST being sent to its ``captured`` event at every watcher.

Watchers are python-socketio clients (websocket transport) spread over a few processes. By default
each process runs its watchers as ``socketio.AsyncClient``s on one asyncio loop (aiohttp, whose
WebSocket reader is compiled); ``client="sync"`` uses the threaded ``socketio.Client`` instead,
which starts a thread for every message and checks UTF-8 byte by byte in Python, so on two shared
cores it measures the watchers more than the server. All times come from CLOCK_MONOTONIC
(``time.monotonic``), which every process on Linux shares.
"""

from __future__ import annotations

import asyncio
import http.client
import multiprocessing as mp
import os
import queue
import statistics
import time
from urllib.parse import urlsplit

import wire

BODY = b'{"event":"bench.live","pad":"' + b"x" * 200 + b'"}'
HEADERS = {"Content-Type": "application/json"}
# Quiet time between one capture reaching every watcher and the next POST: the watchers' own
# bookkeeping (and the server's) for one capture must not overlap the next one's fan-out.
PAUSE_S = 0.02
CLIENTS = ("async", "sync")


class _Arrivals:
    """Stamp each event on arrival; tell the driver once when every watcher here has a seq."""

    def __init__(self, arrived, watchers: int) -> None:
        self.arrived, self.watchers = arrived, watchers
        self.records: list[tuple[int, float]] = []
        self.counts: dict[int, int] = {}

    def __call__(self, summary: dict) -> None:
        at = time.monotonic()  # first thing: the handler's own work is not counted
        seq = summary["seq"]
        self.records.append((seq, at))
        n = self.counts.get(seq, 0) + 1
        self.counts[seq] = n
        # One wake-up of the driver per process and capture, not one per watcher.
        if n == self.watchers:
            self.arrived.release()


def _watch_process(
    url: str, bin_id: str, key: str, clients: int, kind: str, ready, stop, arrived, results
) -> None:
    """Connect ``clients`` watchers, report each event's arrival, send everything back at stop."""
    import os

    if os.environ.get("WATCHER_NICE"):
        os.nice(int(os.environ["WATCHER_NICE"]))
    if kind == "async":
        asyncio.run(_watch_async(url, bin_id, key, clients, ready, stop, arrived, results))
    else:
        _watch_sync(url, bin_id, key, clients, ready, stop, arrived, results)


async def _watch_async(url, bin_id, key, clients, ready, stop, arrived, results) -> None:
    import socketio

    watch = {"bin": bin_id, "after": None, "key": key}
    errors: list[str] = []

    async def join(sio) -> None:
        try:
            await sio.connect(url, transports=["websocket"], wait_timeout=20)
            ack = await sio.call("watch", watch, timeout=20)
            if not ack.get("ok"):
                errors.append(f"watch refused: {ack}")
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            errors.append(f"{type(exc).__name__}: {exc}")

    sios = [socketio.AsyncClient(reconnection=False) for _ in range(clients)]
    on_captured = _Arrivals(arrived, clients)
    for sio in sios:
        sio.on("captured", on_captured)
    await asyncio.gather(*(join(sio) for sio in sios))
    on_captured.watchers = clients - len(errors)
    loop = asyncio.get_running_loop()
    cpu0 = time.process_time()
    ready.put((clients, errors))
    await loop.run_in_executor(None, stop.wait, 600)
    cpu_s = time.process_time() - cpu0
    for sio in sios:
        try:
            await sio.disconnect()
        except Exception:  # noqa: BLE001, S110 - shutting down
            pass
    results.put((on_captured.records, errors, cpu_s))


def _watch_sync(url, bin_id, key, clients, ready, stop, arrived, results) -> None:
    import socketio

    errors: list[str] = []
    sios = []
    on_captured = _Arrivals(arrived, clients)
    for _ in range(clients):
        sio = socketio.Client(reconnection=False)
        sio.on("captured", on_captured)
        try:
            sio.connect(url, transports=["websocket"], wait_timeout=20)
            ack = sio.call("watch", {"bin": bin_id, "after": None, "key": key}, timeout=20)
            if not ack.get("ok"):
                errors.append(f"watch refused: {ack}")
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            errors.append(f"{type(exc).__name__}: {exc}")
        sios.append(sio)
    on_captured.watchers = clients - len(errors)
    cpu0 = time.process_time()
    ready.put((clients, errors))
    stop.wait(600)
    cpu_s = time.process_time() - cpu0
    for sio in sios:
        try:
            sio.disconnect()
        except Exception:  # noqa: BLE001, S110 - shutting down
            pass
    results.put((on_captured.records, errors, cpu_s))


def _pct(values: list[float], p: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def _post(
    conn: http.client.HTTPConnection, path: str
) -> tuple[http.client.HTTPResponse, int, float, float]:
    """POST BODY and read the answer; return it, when it was sent (ns since the epoch and
    monotonic) and when the answer had been read (monotonic)."""
    t0_ns = time.time_ns()
    t0 = time.monotonic()
    conn.request("POST", path, BODY, HEADERS)
    resp = conn.getresponse()
    resp.read()
    return resp, t0_ns, t0, time.monotonic()


def post_back_to_back(base: str, path: str, posts: int, warmup: int) -> dict:
    """POST ``posts`` times over one keep-alive connection, each as soon as the last is answered.

    The same requests, sent and timed the same way, as ``measure``'s captures: against the bare
    app (bench/bare_app.py) they give the HTTP layer's own answer time on this machine.
    """
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    post_ms: list[float] = []
    errors: list[str] = []
    for i in range(warmup + posts):
        try:
            resp, _, t0, t1 = _post(conn, path)
        except OSError as exc:
            errors.append(f"POST #{i} failed: {type(exc).__name__}: {exc}; stopped")
            break
        if resp.status != 200:
            errors.append(f"POST answered {resp.status}")
        elif i >= warmup:
            post_ms.append((t1 - t0) * 1000)
    conn.close()
    return {
        "captures": len(post_ms),
        "warmup": warmup,
        "post_p50_ms": _pct(post_ms, 50),
        "post_p99_ms": _pct(post_ms, 99),
        "post_max_ms": max(post_ms, default=None),
        "errors": errors[:10],
    }


def measure(
    base: str,
    bin_id: str,
    key: str,
    watchers: int,
    captures: int,
    processes: int,
    warmup: int = 10,
    client: str = "async",
    pause_s: float = PAUSE_S,
    use_wire: bool = True,
) -> dict:
    """Send ``captures`` POSTs one at a time, each ``pause_s`` after every watcher had the last.

    With ``pause_s`` 0 they go back to back: each as soon as the last one's event arrived.
    """
    ctx = mp.get_context("spawn")
    ready, results = ctx.Queue(), ctx.Queue()
    stop, arrived = ctx.Event(), ctx.Semaphore(0)
    processes = max(1, min(processes, watchers))
    shares = [watchers // processes + (i < watchers % processes) for i in range(processes)]
    procs = [
        ctx.Process(
            target=_watch_process,
            args=(base, bin_id, key, n, client, ready, stop, arrived, results),
            daemon=True,
        )
        for n in shares
    ]
    parts = urlsplit(base)
    sniffer, wire_error, wire_results = None, None, ctx.Queue()
    if use_wire:
        sniffer_ready = ctx.Queue()
        sniffer = ctx.Process(
            target=wire.sniff, args=(parts.port, sniffer_ready, stop, wire_results), daemon=True
        )
        sniffer.start()
        try:
            wire_error = sniffer_ready.get(timeout=30)
        except queue.Empty:
            wire_error = "the sniffer did not start"
        if wire_error:
            sniffer.join(timeout=5)
            sniffer = None
    t_connect = time.monotonic()
    for p in procs:
        p.start()
    connected, errors, reporting = 0, [], 0
    try:
        for _ in procs:
            n, errs = ready.get(timeout=90)
            connected += n - len(errs)
            reporting += n > len(errs)
            errors += errs
    except queue.Empty:
        errors.append("watchers did not connect within 90 s")
    connect_s = time.monotonic() - t_connect

    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    path = f"/h/{bin_id}"
    sent: dict[int, float] = {}
    sent_ns: dict[int, int] = {}  # the same moment on CLOCK_REALTIME, the kernel's timestamps
    post_ms: list[float] = []
    waits_timed_out = 0
    t_load = time.monotonic()
    load_before = os.getloadavg()[0]
    for i in range(warmup + captures):
        if pause_s:
            time.sleep(pause_s)
        try:
            resp, t0_ns, t0, t1 = _post(conn, path)
        except OSError as exc:
            errors.append(f"capture POST #{i} failed: {type(exc).__name__}: {exc}; stopped")
            break
        if resp.status != 200:
            errors.append(f"capture POST answered {resp.status}")
            continue
        seq = int(resp.getheader("X-Hookscope-Seq"))
        if i >= warmup:
            sent[seq], sent_ns[seq] = t0, t0_ns
            post_ms.append((t1 - t0) * 1000)
        # Pace: the next capture goes only after every watcher saw this one (or 2 s passed).
        # Each watcher process signals once, when all of its watchers have it.
        deadline = t0 + 2.0
        for _ in range(reporting):
            if not arrived.acquire(timeout=max(0.0, deadline - time.monotonic())):
                waits_timed_out += 1
                break
    load_s = time.monotonic() - t_load
    loadavg = (load_before, os.getloadavg()[0])
    conn.close()

    stop.set()
    records: list[tuple[int, float]] = []
    watcher_cpu_s = 0.0
    for _ in procs:
        try:
            recs, errs, cpu_s = results.get(timeout=60)
            records += recs
            errors += errs
            watcher_cpu_s += cpu_s
        except queue.Empty:
            errors.append("a watcher process did not report back")
    for p in procs:
        p.join(timeout=10)
        if p.is_alive():
            p.kill()
    wire_ms: list[float] = []
    wire_drops = None
    last_ns: dict[int, int] = {}
    if sniffer is not None:
        try:
            frames, wire_drops = wire_results.get(timeout=120)
        except queue.Empty:
            frames, wire_error = [], "the sniffer did not report back"
        first: dict[tuple[int, int], int] = {}
        for seq, port, ns in frames:
            if seq in sent_ns and ns:
                first[seq, port] = min(ns, first.get((seq, port), ns))
        wire_ms = sorted((ns - sent_ns[seq]) / 1e6 for (seq, _), ns in first.items())
        for (seq, _), ns in first.items():
            last_ns[seq] = max(ns, last_ns.get(seq, ns))
        sniffer.join(timeout=10)
        if sniffer.is_alive():
            sniffer.kill()

    per_capture: dict[int, list[float]] = {}
    for seq, t in records:
        if seq in sent:
            per_capture.setdefault(seq, []).append((t - sent[seq]) * 1000)
    all_ms = sorted(ms for v in per_capture.values() for ms in v)
    first_ms = sorted(min(v) for v in per_capture.values())
    slowest_ms = sorted(max(v) for v in per_capture.values())
    expected = len(sent) * connected
    return {
        "watchers": watchers,
        "connected": connected,
        "watcher_client": client,
        "watcher_processes": processes,
        "pause_ms": pause_s * 1000,
        "connect_s": round(connect_s, 2),
        "captures": len(sent),
        "warmup": warmup,
        "events_expected": expected,
        "events_received": len(all_ms),
        "events_missing": expected - len(all_ms),
        # At the watcher's socket: the kernel's timestamp of each frame (wire.py); the server alone.
        "wire_p50_ms": _pct(wire_ms, 50),
        "wire_p99_ms": _pct(wire_ms, 99),
        "wire_all_watchers_p50_ms": _pct(
            sorted((ns - sent_ns[seq]) / 1e6 for seq, ns in last_ns.items()), 50
        ),
        "wire_frames": len(wire_ms),
        "wire_drops": wire_drops,
        "wire_error": wire_error,
        # In the watcher's ``captured`` handler: the server plus the client's own reading.
        "p50_ms": _pct(all_ms, 50),
        "p99_ms": _pct(all_ms, 99),
        "max_ms": all_ms[-1] if all_ms else None,
        # The first watcher to have it: the server's path without most of the fan-out.
        "first_watcher_p50_ms": _pct(first_ms, 50),
        # The time until the last watcher had it: what "everyone sees it" costs.
        "all_watchers_p50_ms": _pct(slowest_ms, 50),
        "all_watchers_p99_ms": _pct(slowest_ms, 99),
        # The capture's own HTTP answer, from just before the POST until its answer was read.
        "post_p50_ms": _pct(post_ms, 50),
        "post_p99_ms": _pct(post_ms, 99),
        # CPU the watcher processes used per capture (all of them together), while the load ran:
        # next to the time between captures it shows whether the watchers kept up.
        "watcher_cpu_ms_per_capture": round(1000 * watcher_cpu_s / max(1, warmup + captures), 2),
        "load_s": round(load_s, 2),
        # The machine's 1-minute load average before and after the captures: it is shared.
        "loadavg": loadavg,
        "loadavg_end": loadavg[1],
        "pacing_timeouts": waits_timed_out,
        "errors": errors[:10],
    }
