"""Auto-forward: ingest with and without forwarding every capture to one local target.

In each run one fresh server takes the same wrk load twice, once into a bin without forward
targets and once into a bin that forwards to a local target (the bare app, bench/bare_app.py,
in its own gunicorn); the order alternates between runs. The figure is captures/s forwarded over
captures/s plain, same run. After the forwarded load, the bench waits until no forward try is
pending and reports how long that took (the forwarder's backlog), how many tries reached the
target with a 2xx, and failures; every capture must be delivered once (``missing``). Since a
forwarder that falls behind leaves the worker free to take more captures, the rate that counts
is captures stored *and* delivered over the load and its backlog together (``delivered_per_s``,
and ``delivered_ratio`` over plain).
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests
from common import (
    BareServer,
    busy_pct,
    cpu_by_process,
    cpu_ms_per_item,
    cpu_seconds,
    machine_busy,
    print_rows,
    worker_pids,
)
from ingest import ingest_bins

CONNECTIONS = 32
DRAIN_LIMIT_S = 300


def forward_counts(db: Path) -> dict[str, int]:
    """Tries by outcome, read from the server's SQLite file."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        rows = conn.execute(
            "SELECT state, status BETWEEN 200 AND 299, count(*), count(DISTINCT request_id)"
            " FROM attempts GROUP BY 1, 2"
        ).fetchall()
    out = {"pending": 0, "delivered": 0, "failed": 0, "delivered_requests": 0}
    for state, ok, count, distinct in rows:
        if state == "pending":
            out["pending"] += count
        elif ok:
            out["delivered"] += count
            out["delivered_requests"] += distinct
        else:
            out["failed"] += count
    return out


def one(launch: Callable, harness, run: int, seconds: float, connections: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="hookscope-bench-forward-") as tmp:
        target = BareServer(Path(tmp), harness.free_port()).start()
        gun = launch(Path(tmp), {"HOOKSCOPE_OUTBOUND_ALLOW": "127.0.0.1/32"}).start()
        try:
            plain = gun.create_bin()
            forwarded = gun.create_bin()
            r = requests.patch(
                f"{gun.url}/api/v1/bins/{forwarded['id']}",
                json={"forward_to": [f"{target.url}/h/bare"]},
                headers={"Authorization": f"Bearer {forwarded['read_key']}"},
                timeout=10,
            )
            r.raise_for_status()
            pid = worker_pids(gun.proc.pid)[0]
            names = {pid: "server worker", gun.proc.pid: "server master"}
            names |= {p: "target" for p in [target.proc.pid, *worker_pids(target.proc.pid)]}
            out: dict = {"run": run}
            order = ["plain", "forwarded"] if run % 2 else ["forwarded", "plain"]
            for name in order:
                b = plain if name == "plain" else forwarded
                every, busy0 = cpu_by_process(names), machine_busy()
                cpu0, t0 = cpu_seconds(pid), time.monotonic()
                marks: dict = {}
                load = ingest_bins(
                    gun.url, [(b["id"], b["read_key"])], connections, seconds, page=False,
                    loaded=lambda marks=marks: marks.update(end=time.monotonic()),
                )  # fmt: skip
                out[name] = {
                    "captures_per_s": load["captures_per_s"],
                    "p50_ms": load["p50_ms"],
                    "p99_ms": load["p99_ms"],
                    "lost": load["lost"],
                    "stored": load["stored_last_seq"],
                    "worker_cpu_pct": round(
                        100 * (cpu_seconds(pid) - cpu0) / (marks["end"] - t0), 1
                    ),
                }
                if name == "forwarded":
                    out["drain"] = drain(Path(tmp) / "hookscope.db", marks["end"])
                    out["drain"]["missing"] = (
                        load["stored_last_seq"] - out["drain"]["delivered_requests"]
                    )
                    # Captures stored and delivered, over the load and the backlog after it: a
                    # forwarder that falls behind does not count as keeping up.
                    spent = marks["end"] - t0 + out["drain"]["drained_after_load_s"]
                    out["forwarded"]["delivered_per_s"] = round(
                        out["drain"]["delivered_requests"] / spent, 1
                    )
                # CPU by process per capture, the backlog's sending included, and the share of
                # the machine's two cores busy from the load's start to the backlog's end.
                out[name]["cpu_ms_per_capture"] = cpu_ms_per_item(
                    every, cpu_by_process(names), max(1, load["stored_last_seq"])
                )
                out[name]["machine_busy_pct"] = busy_pct(busy0, machine_busy())
            out["ratio"] = round(
                out["forwarded"]["captures_per_s"] / out["plain"]["captures_per_s"], 3
            )
            out["delivered_ratio"] = round(
                out["forwarded"]["delivered_per_s"] / out["plain"]["captures_per_s"], 3
            )
            out["loadavg"] = list(os.getloadavg())
            return out
        finally:
            gun.stop()
            target.stop()


def drain(db: Path, load_end: float) -> dict:
    """Wait until no try is pending; say how long it took after the load ended."""
    deadline = time.monotonic() + DRAIN_LIMIT_S
    counts = forward_counts(db)
    while counts["pending"] and time.monotonic() < deadline:
        time.sleep(0.25)
        counts = forward_counts(db)
    counts["drained_after_load_s"] = round(time.monotonic() - load_end, 2)
    return counts


def run(launch: Callable, harness, runs: int, seconds: float | None) -> dict:
    """Run the comparison ``runs`` times and print a table of medians."""
    seconds = seconds or 10
    results = []
    for n in range(1, runs + 1):
        r = one(launch, harness, n, seconds, CONNECTIONS)
        results.append(r)
        print(f"  run {n}: plain {r['plain']['captures_per_s']}/s, forwarded "
              f"{r['forwarded']['captures_per_s']}/s (ratio {r['ratio']}; captured and "
              f"delivered {r['forwarded']['delivered_per_s']}/s, {r['delivered_ratio']}), "
              f"delivered {r['drain']['delivered']}, failed {r['drain']['failed']}, missing "
              f"{r['drain']['missing']}, drained {r['drain']['drained_after_load_s']} s after "
              f"the load; load avg {r['loadavg'][0]:.2f}", flush=True)  # fmt: skip
        for name in ("plain", "forwarded"):
            top = list(r[name]["cpu_ms_per_capture"].items())[:5]
            print(f"    {name}: machine busy {r[name]['machine_busy_pct']}%, CPU ms per capture "
                  + ", ".join(f"{kind} {ms}" for kind, ms in top), flush=True)  # fmt: skip

    def med(get: Callable[[dict], float]) -> float:
        return statistics.median(get(r) for r in results)

    print_rows(
        ["metric", f"median of {runs}"],
        [
            ["captures/s, no forward", med(lambda r: r["plain"]["captures_per_s"])],
            ["captures/s, forward to 1 target", med(lambda r: r["forwarded"]["captures_per_s"])],
            ["ratio (same run)", med(lambda r: r["ratio"])],
            [
                "captured and delivered/s (load + backlog)",
                med(lambda r: r["forwarded"]["delivered_per_s"]),
            ],
            ["  over no forward (same run)", med(lambda r: r["delivered_ratio"])],
            [
                "p99 ms, no forward / forward",
                f"{med(lambda r: r['plain']['p99_ms'])} / "
                f"{med(lambda r: r['forwarded']['p99_ms'])}",
            ],  # fmt: skip
            [
                "worker CPU %, no forward / forward",
                f"{med(lambda r: r['plain']['worker_cpu_pct'])}"
                f" / {med(lambda r: r['forwarded']['worker_cpu_pct'])}",
            ],  # fmt: skip
            ["forward tries delivered (2xx)", med(lambda r: r["drain"]["delivered"])],
            ["forward tries failed", med(lambda r: r["drain"]["failed"])],
            ["captures never delivered", med(lambda r: r["drain"]["missing"])],
            ["backlog drained, s after load", med(lambda r: r["drain"]["drained_after_load_s"])],
        ],
    )
    return {"runs": results}
