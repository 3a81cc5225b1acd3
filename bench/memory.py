"""Memory of the gunicorn worker: while taking 25 MB bodies, and after 100,000 small captures.

Peak resident memory is the kernel's own high-water mark (VmHWM in /proc/<pid>/status, reset
between phases through /proc/<pid>/clear_refs) and, as a cross-check, the highest VmRSS a sampling
thread saw every 5 ms. Each part runs on a fresh server so the first cannot inflate the second.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests
from common import RssSampler, memory_kib, mib, print_rows, problems, reset_peak, worker_pids
from ingest import bearer, run_load, settled_last_seq

MiB = 1024 * 1024
SEQUENTIAL, CONCURRENT = 5, 4
SMALL_TARGET_MIB = 150
LARGE_TARGET_X = 3


def run(launch: Callable, body_mib: float, captures: int, max_seconds: float) -> dict:
    out = {"large": large_bodies(launch, int(body_mib * MiB))}
    out["small"] = many_small(launch, captures, max_seconds)
    out["attribution"] = attribution(int(body_mib * MiB))
    print_table(out)
    return out


def _post(base: str, path: str, body: bytes, timeout: float = 180) -> tuple[int, float]:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    t0 = time.monotonic()
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        return resp.status, time.monotonic() - t0
    finally:
        conn.close()


def _warm(base: str, bin_id: str, key: str) -> None:
    """Touch the code paths once (imports, caches, connection pool) before the baseline."""
    for _ in range(5):
        _post(base, f"/h/{bin_id}/warm", b'{"warm": true}')
    requests.get(f"{base}/api/v1/bins/{bin_id}/requests", headers=bearer(key), timeout=10)
    requests.get(f"{base}/api/v1/bins/{bin_id}/requests/1", headers=bearer(key), timeout=10)
    time.sleep(0.5)


def _phase(pid: int, base_kib: int, size: int, send: Callable[[], list]) -> dict:
    """Run ``send`` with the peak reset and sampled; report peak and what remains after."""
    exact = reset_peak(pid)
    with RssSampler(pid, every=0.005) as sampler:
        t0 = time.monotonic()
        answers = send()
        seconds = time.monotonic() - t0
        time.sleep(1.0)  # let the worker finish and free what it holds
    now = memory_kib(pid)
    peak = max(now["VmHWM"] if exact else 0, sampler.peak_kib)
    return {
        "statuses": sorted(a[0] for a in answers),
        "seconds": round(seconds, 2),
        "post_s": [round(a[1], 2) for a in answers],
        "peak_mib": mib(peak),
        "peak_sampled_mib": mib(sampler.peak_kib),
        "peak_exact": exact,
        "increase_mib": mib(peak - base_kib),
        "increase_x_body": round((peak - base_kib) * 1024 / size, 2),
        "peak_x_body": round(peak * 1024 / size, 2),
        "after_mib": mib(now["VmRSS"]),
    }


def large_bodies(launch: Callable, size: int) -> dict:
    """5 sequential then 4 concurrent POSTs of ``size`` bytes of JSON."""
    body = b'{"files":"' + b"A" * (size - 13) + b'"}\n'
    assert len(body) == size
    with tempfile.TemporaryDirectory(prefix="hookscope-mem-") as tmp:
        gun = launch(Path(tmp), {"HOOKSCOPE_MAX_BODY_BYTES": str(size)}).start()
        try:
            pid = worker_pids(gun.proc.pid)[0]
            created = gun.create_bin()
            bin_id, key = created["id"], created["read_key"]
            _warm(gun.url, bin_id, key)
            base = memory_kib(pid)
            out: dict = {"body_bytes": size, "baseline_mib": mib(base["VmRSS"])}
            path = f"/h/{bin_id}/big"
            out["sequential"] = _phase(
                pid, base["VmRSS"], size, lambda: [_post(gun.url, path, body) for _ in range(5)]
            )
            print(f"  memory: {SEQUENTIAL} x {size / MiB:.0f} MiB sequential: "
                  f"peak {out['sequential']['peak_mib']} MiB", flush=True)  # fmt: skip

            def concurrent() -> list:
                answers: list = []
                threads = [
                    threading.Thread(target=lambda: answers.append(_post(gun.url, path, body)))
                    for _ in range(CONCURRENT)
                ]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(timeout=300)
                return answers

            out["concurrent"] = _phase(pid, base["VmRSS"], size, concurrent)
            listed = requests.get(
                f"{gun.url}/api/v1/bins/{bin_id}/requests", headers=bearer(key), timeout=30
            ).json()["requests"]
            out["stored_full_size"] = sum(r["body_size"] == size for r in listed)
        finally:
            gun.stop()
            found = problems(gun.log_text())
            out["log_problem_count"], out["log_problems"] = len(found), found[:20]
    return out


def many_small(launch: Callable, captures: int, max_seconds: float) -> dict:
    """Send 1 KB JSON captures with wrk (32 connections) until ``captures`` are stored."""
    with tempfile.TemporaryDirectory(prefix="hookscope-mem-") as tmp:
        gun = launch(Path(tmp), {}).start()
        try:
            pid = worker_pids(gun.proc.pid)[0]
            created = gun.create_bin()
            bin_id, key = created["id"], created["read_key"]
            _warm(gun.url, bin_id, key)
            base = memory_kib(pid)["VmRSS"]
            reset_peak(pid)
            ok, stored, chunks, t0 = 0, 5, [], time.monotonic()
            with RssSampler(pid, every=0.5) as sampler:
                while stored < captures and time.monotonic() - t0 < max_seconds:
                    left = max_seconds - (time.monotonic() - t0)
                    rate = stored / (time.monotonic() - t0) if chunks else 500
                    secs = int(max(2, min(15, left, (captures - stored) / max(rate, 1) + 1)))
                    load = run_load(f"{gun.url}/h/{bin_id}", 32, secs)
                    ok += load["ok_2xx"]
                    stored = settled_last_seq(gun.url, bin_id, key, quiet=0.3)
                    chunks.append({"seconds": secs, "ok_2xx": load["ok_2xx"], "stored": stored,
                                   "rss_mib": mib(memory_kib(pid)["VmRSS"])})  # fmt: skip
            seconds = time.monotonic() - t0
            time.sleep(1.0)
            now = memory_kib(pid)
        finally:
            gun.stop()
            found = problems(gun.log_text())
    return {
        "target": captures,
        "stored": stored - 5,
        "answered_2xx": ok,
        # wrk leaves up to one request per connection per chunk unanswered but stored.
        "lost": max(0, ok - (stored - 5)),
        "seconds": round(seconds, 1),
        "captures_per_s": round((stored - 5) / seconds, 1),
        "baseline_mib": mib(base),
        "peak_mib": mib(max(now["VmHWM"], sampler.peak_kib)),
        "after_mib": mib(now["VmRSS"]),
        "chunks": chunks,
        "log_problem_count": len(found),
        "log_problems": found[:20],
    }


# Where a large body's memory goes, step by step, in a fresh interpreter: the body as read by
# werkzeug (as app/ingest/gate.py read_body does) and SQLite's insert of it as a BLOB.
_ATTRIBUTE = r"""
import io, json, sqlite3, sys, tempfile
from werkzeug.wsgi import LimitedStream
def hwm():
    open('/proc/self/clear_refs', 'w').write('5')
def peak():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM'):
            return int(line.split()[1])
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS'):
            return int(line.split()[1])
size = int(sys.argv[1])
wire = io.BytesIO(b'A' * size)
out = {}
base = rss(); hwm()
body = LimitedStream(wire, size).read()
out['read_body (werkzeug LimitedStream.read)'] = (peak() - base, rss() - base)
db = sqlite3.connect(tempfile.mktemp(suffix='.db'), isolation_level=None)
db.execute('PRAGMA journal_mode = WAL')
db.execute('CREATE TABLE p (id INTEGER PRIMARY KEY, body BLOB NOT NULL)')
base = rss(); hwm()
db.execute('BEGIN IMMEDIATE'); db.execute('INSERT INTO p (body) VALUES (?)', (body,))
db.execute('COMMIT')
out['sqlite3 INSERT of the BLOB (one more body held)'] = (peak() - base, rss() - base)
print(json.dumps(out))
"""


def attribution(size: int) -> dict:
    """Measure, outside the server, what reading and inserting one large body cost in memory."""
    proc = subprocess.run(
        [sys.executable, "-c", _ATTRIBUTE, str(size)], capture_output=True, text=True, timeout=120
    )
    if proc.returncode:
        return {"error": proc.stderr[-500:]}
    return {
        step: {"peak_increase_x_body": round(p * 1024 / size, 2),
               "held_x_body": round(h * 1024 / size, 2)}
        for step, (p, h) in json.loads(proc.stdout).items()
    }  # fmt: skip


def print_table(out: dict) -> None:
    large, small = out["large"], out["small"]
    size = large["body_bytes"]
    print(f"\nmemory of the gunicorn worker (1 run; RSS in MiB; body {size / MiB:.1f} MiB)")
    head = ["phase", "baseline", "peak", "increase", "increase/body", "peak/body", "after",
            "answers", "target"]  # fmt: skip
    table = []
    for name, count in (("sequential", SEQUENTIAL), ("concurrent", CONCURRENT)):
        p = large[name]
        # The target is per body being taken: one at a time, or all of them at once.
        in_flight = 1 if name == "sequential" else count
        limit = LARGE_TARGET_X * in_flight
        verdict = "ok" if p["increase_x_body"] < limit else "MISSED"
        table.append([f"{count} x {size / MiB:.0f} MiB {name}", large["baseline_mib"],
                      p["peak_mib"], p["increase_mib"], f"{p['increase_x_body']}x",
                      f"{p['peak_x_body']}x", p["after_mib"], ",".join(map(str, p["statuses"])),
                      f"increase < {limit}x body ({in_flight} at once): {verdict}"])  # fmt: skip
    ok = small["after_mib"] < SMALL_TARGET_MIB
    table.append([f"{small['stored']:,} x 1 KB captures", small["baseline_mib"], small["peak_mib"],
                  round(small["peak_mib"] - small["baseline_mib"], 1), "", "", small["after_mib"],
                  f"{small['answered_2xx']:,} 2xx",
                  f"after < {SMALL_TARGET_MIB} MiB: {'ok' if ok else 'MISSED'}"])  # fmt: skip
    print_rows(head, table)
    print(f"large bodies stored at full size: {large['stored_full_size']} of "
          f"{SEQUENTIAL + CONCURRENT}; POST seconds sequential {large['sequential']['post_s']}, "
          f"concurrent {large['concurrent']['post_s']}; peak from VmHWM: "
          f"{large['sequential']['peak_exact']}")  # fmt: skip
    print(
        f"small captures: {small['stored']:,} stored of {small['target']:,} wanted in "
        f"{small['seconds']} s ({small['captures_per_s']}/s), lost {small['lost']}"
    )
    print(
        f"server-log problems: large {large['log_problem_count']}, "
        f"small {small['log_problem_count']}"
    )
    print("where a large body goes (measured outside the server, x body size, peak / held):")
    for step, v in out["attribution"].items():
        print(f"  {step}: {v}")
