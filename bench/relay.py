"""Relay: captures at a steady rate through ``hookscope forward`` to a local target.

A fresh gunicorn takes ``rate`` captures a second for ``seconds`` (after a warm-up), each a
different body of 200-2,000 random bytes, sent open-loop from a few keep-alive connections.
``hookscope forward --json`` (the installed command, its own process) relays them to a target
server in a process of its own (keeping connections alive, as common framework servers do)
that stamps each request when its last byte arrived and keeps its body's digest; a
python-socketio watcher, also in its own process, stamps each ``captured`` event. Every clock
is CLOCK_MONOTONIC, which all processes share.

Reported: the rate sent, stored and delivered; every body checked byte for byte, duplicates and
order; added latency from the capture stored (its sender's 200 arrived; the commit is just
before it) to the target having the whole request, p50/p99/max; and where the time goes, as
medians: stored -> the live event at a watcher (the server's publish and the WebSocket), the
live event -> the target having the request (the relay's part: waking, taking the capture,
building and writing the request; per capture, not a difference of medians, which came out
negative since the call below also holds the target's answer), and the relay's call to the
target (its ``latency_ms``: connect, write, the target's answer). CPU per capture of the
server worker, the relay and the target.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import multiprocessing as mp
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import live_latency
from common import cpu_by_process, cpu_ms_per_item, problems, worker_pids

SENDERS = 8
WARMUP = 200
TARGETS = {"p50_ms": 5.0, "p99_ms": 20.0}


def run(launch: Callable, rate: int, seconds: float) -> dict:
    """Start a server, a target, a watcher and the relay; send; measure; stop everything."""
    with tempfile.TemporaryDirectory(prefix="hookscope-bench-relay-") as tmp:
        gun = launch(Path(tmp), {})
        gun.start()
        try:
            out = _measure(gun, Path(tmp), rate, seconds)
        finally:
            gun.stop()
            log = gun.log_text()
        out["server_log_problems"] = problems(log)[:10]
    _print(out)
    return out


def _measure(gun, tmp: Path, rate: int, seconds: float) -> dict:
    created = gun.create_bin()
    bin_id, key = created["id"], created["read_key"]
    ctx = mp.get_context("spawn")
    target_ready, target_stop, target_out = ctx.Queue(), ctx.Event(), ctx.Queue()
    target = ctx.Process(target=_target, args=(target_ready, target_stop, target_out))
    target.start()
    port = target_ready.get(timeout=60)
    ready, stop, arrived, watched = ctx.Queue(), ctx.Event(), ctx.Semaphore(0), ctx.Queue()
    watcher = ctx.Process(
        target=live_latency._watch_process,
        args=(gun.url, bin_id, key, 1, "async", ready, stop, arrived, watched),
    )
    watcher.start()
    ready.get(timeout=60)
    relay, lines = _start_relay(gun.url, bin_id, key, port, tmp)
    try:
        _wait_for(lambda: any("live stream: on" in e for e in lines["err"]), 120, "relay start")
        bodies: dict[int, bytes] = {}
        _send(gun.url, bin_id, 100, WARMUP / 100, bodies, {}, "warm")
        _wait_for(lambda: len(lines["out"]) >= WARMUP, 60, "warm-up deliveries")
        names = {gun.proc.pid: "gunicorn master", relay.pid: "relay", target.pid: "target"}
        names |= {pid: "gunicorn worker" for pid in worker_pids(gun.proc.pid)}
        names[os.getpid()] = "bench (senders)"
        cpu0 = cpu_by_process(names)
        stored: dict[int, float] = {}
        t0 = time.monotonic()
        sent_for = _send(gun.url, bin_id, rate, seconds, bodies, stored, "n")
        sent_s = time.monotonic() - t0
        total = WARMUP + len(stored)
        _wait_for(lambda: len(lines["out"]) >= total, 120, "every delivery")
        delivered_s = time.monotonic() - t0
        cpu = cpu_ms_per_item(cpu0, cpu_by_process(names), len(stored))
    finally:
        relay.terminate()
        relay.wait(timeout=30)
        stop.set()
        target_stop.set()
    events = {seq: at for seq, at in watched.get(timeout=60)[0]}
    received = target_out.get(timeout=60)
    watcher.join(timeout=30)
    target.join(timeout=30)
    records = [json.loads(line) for line in lines["out"]]
    return _report(rate, seconds, sent_for, sent_s, delivered_s, bodies, stored, events,
                   received, records, cpu)  # fmt: skip


def _start_relay(base: str, bin_id: str, key: str, port: int, tmp: Path):
    hookscope = str(Path(sys.executable).parent / "hookscope")
    env = {**os.environ, "XDG_STATE_HOME": str(tmp / "state"), "HOOKSCOPE_KEY": key}
    relay = subprocess.Popen(
        [hookscope, "forward", f"{base}/h/{bin_id}", "--to", f"http://127.0.0.1:{port}/hook",
         "--json", "--only-new"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: dict[str, list[str]] = {"out": [], "err": []}
    for stream, kept in ((relay.stdout, lines["out"]), (relay.stderr, lines["err"])):
        threading.Thread(target=lambda s=stream, k=kept: k.extend(s), daemon=True).start()
    return relay, lines


def _send(
    base: str, bin_id: str, rate: float, seconds: float, bodies: dict, stored: dict, label: str
) -> float:
    """Send ``rate`` captures a second for ``seconds``, open-loop; keep each body and when its
    200 arrived, by seq. Return the seconds the schedule took."""
    host, port = base.removeprefix("http://").split(":")
    count = int(rate * seconds)
    start = time.monotonic() + 0.05
    lock = threading.Lock()

    def sender(index: int) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        rng = random.Random(index)
        for n in range(index, count, SENDERS):
            pause = start + n / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            body = rng.randbytes(rng.randint(200, 2000))
            conn.request("POST", f"/h/{bin_id}/bench/{label}{n}", body=body,
                         headers={"Content-Type": "application/octet-stream"})  # fmt: skip
            response = conn.getresponse()
            response.read()
            at = time.monotonic()
            seq = int(response.getheader("X-Hookscope-Seq"))
            with lock:
                bodies[seq] = body
                stored[seq] = at
        conn.close()

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - start


def _target(ready, stop, out) -> None:
    """A target server: stamp each request when its body is in, keep its digest, answer 200."""
    received: list[tuple[str, float, str]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Request after request on one connection until the relay closes it, as the servers
        # of common web frameworks (uvicorn, puma, Node's http) do.
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            at = time.monotonic()
            path = head.split(b" ", 2)[1]
            digest = hashlib.sha256(body).hexdigest()
            received.append((path.rsplit(b"/", 1)[1].decode(), at, digest))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
        ready.put(server.sockets[0].getsockname()[1])
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, stop.wait, 3600)
        server.close()

    asyncio.run(serve())
    out.put(received)


def _report(rate, seconds, sent_for, sent_s, delivered_s, bodies, stored, events, received,
            records, cpu) -> dict:  # fmt: skip
    """Check every delivery and sum up the latencies."""
    by_n = {}
    duplicates = 0
    for n, at, digest in received:
        duplicates += n in by_n
        by_n.setdefault(n, (at, digest))
    # The path names each capture once; the relay's records give its seq.
    seq_of_n = {r["path"].rsplit("/", 1)[1]: r["seq"] for r in records if "path" in r}
    arrival = {seq_of_n[n]: v for n, v in by_n.items() if n in seq_of_n}
    measured = sorted(stored)
    not_exact = sum(
        1 for seq in bodies
        if seq in arrival and arrival[seq][1] != hashlib.sha256(bodies[seq]).hexdigest()
    )  # fmt: skip
    missing = [seq for seq in bodies if seq not in arrival]
    order = [r["seq"] for r in records if r.get("outcome") == "delivered"]
    latency = [(arrival[s][0] - stored[s]) * 1000 for s in measured if s in arrival]
    notify = [(events[s] - stored[s]) * 1000 for s in measured if s in events]
    # From the live event to the target having the request: the relay's own part (waking,
    # taking the capture, building and writing the request).
    relayed = [(arrival[s][0] - events[s]) * 1000 for s in measured if s in events and s in arrival]
    call = {r["seq"]: r["latency_ms"] for r in records if r.get("outcome") == "delivered"}
    calls = [call[s] for s in measured if s in call]
    outcomes = {r.get("outcome") for r in records}
    p50 = _pct(latency, 50)
    return {
        "rate_asked": rate,
        "seconds": seconds,
        "captures": len(measured),
        "sent_per_s": round(len(measured) / sent_s, 1),
        "schedule_s": round(sent_for, 2),
        "delivered_per_s": round(len(measured) / delivered_s, 1),
        "last_delivery_after_last_send_s": round(delivered_s - sent_s, 3),
        "bodies_not_exact": not_exact,
        "missing": len(missing),
        "duplicates": duplicates,
        "in_seq_order": order == sorted(order),
        "outcomes": sorted(o for o in outcomes if o),
        "added_latency_p50_ms": p50,
        "added_latency_p99_ms": _pct(latency, 99),
        "added_latency_max_ms": round(max(latency), 3) if latency else None,
        "stored_to_event_p50_ms": _pct(notify, 50),
        "stored_to_event_p99_ms": _pct(notify, 99),
        "target_call_p50_ms": _pct(calls, 50),
        "target_call_p99_ms": _pct(calls, 99),
        "event_to_target_p50_ms": _pct(relayed, 50),
        "event_to_target_p99_ms": _pct(relayed, 99),
        "cpu_ms_per_capture": cpu,
        "targets": TARGETS,
    }


def _pct(values: list[float], p: int) -> float | None:
    if not values:
        return None
    return round(statistics.quantiles(values, n=100, method="inclusive")[p - 1], 3)


def _wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:g} s for {what}")
        time.sleep(0.02)


def _print(out: dict) -> None:
    print(f"  relay {out['rate_asked']}/s for {out['seconds']:g} s: sent {out['sent_per_s']}/s, "
          f"delivered {out['delivered_per_s']}/s (last one {out['last_delivery_after_last_send_s']}"
          f" s after the last send); {out['captures']} captures, not exact "
          f"{out['bodies_not_exact']}, missing {out['missing']}, duplicates {out['duplicates']}, "
          f"in order {out['in_seq_order']}", flush=True)  # fmt: skip
    print(f"  added latency (stored -> target has it): p50 {out['added_latency_p50_ms']} ms, "
          f"p99 {out['added_latency_p99_ms']} ms, max {out['added_latency_max_ms']} ms "
          f"(targets p50 < 5, p99 < 20)", flush=True)  # fmt: skip
    print(f"  where it goes (p50): stored -> live event {out['stored_to_event_p50_ms']} ms; "
          f"live event -> the target has it {out['event_to_target_p50_ms']} ms (p99 "
          f"{out['event_to_target_p99_ms']}); the relay's call to the target, its answer "
          f"included, {out['target_call_p50_ms']} ms", flush=True)  # fmt: skip
    print(f"  CPU ms per capture: {out['cpu_ms_per_capture']}", flush=True)
