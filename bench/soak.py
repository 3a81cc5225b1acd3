"""Soak: a million captures through HTTP into 100 bins on the embedded default, retention 1,000.

One gunicorn worker on SQLite, as `make run` starts it, with HOOKSCOPE_DEFAULT_MAX_REQUESTS=1000.
wrk posts 1 KB JSON bodies to the bins in turn, in segments of a few seconds, until the target
number of 2xx answers is reached. After each segment: the worker's RSS, the SQLite file's and
WAL's sizes and free pages, the segment's capture latency (p50/p99/max, wrk's). Every
``churn_every`` captures ``churn`` bins are deleted, as expiry deletes them, and new ones take
their place: their rows' pages go to SQLite's free list and the file must not grow for them.

At the end every 2xx is accounted for: each bin's last sequence number (taken when a capture is
stored, before it is answered) summed over the bins, deleted ones included, is at least the 2xx
count, and at most that plus what wrk left unanswered when a segment stopped. Each live bin
holds its newest 1,000 (retention). Not a test: run it with ``bench/run.py --only soak``.
"""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests
from common import memory_kib, mib, print_rows, problems, worker_pids
from ingest import bearer, run_wrk, settled_last_seq

CONNECTIONS = 32


def file_sizes(db: Path) -> dict[str, float]:
    """The database's and WAL's sizes (MiB), and its pages and free pages."""
    wal = db.with_name(db.name + "-wal")
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        (free,) = conn.execute("PRAGMA freelist_count").fetchone()
    finally:
        conn.close()
    return {
        "db_mib": mib(db.stat().st_size, "B"),
        "wal_mib": mib(wal.stat().st_size if wal.exists() else 0, "B"),
        "pages": pages,
        "free_pages": free,
    }


def run(
    launch: Callable,
    target: int = 1_000_000,
    bins: int = 100,
    keep: int = 1000,
    segment_seconds: float = 5.0,
    churn: int = 10,
    churn_every: int = 100_000,
) -> dict:
    out: dict = {"target": target, "bins": bins, "keep": keep, "segments": [], "churned": 0}
    with tempfile.TemporaryDirectory(prefix="hookscope-soak-") as tmp:
        env = {"HOOKSCOPE_DEFAULT_MAX_REQUESTS": str(keep)}
        gun = launch(Path(tmp), env).start()
        db = Path(tmp) / "hookscope.db"
        try:
            (pid,) = worker_pids(gun.proc.pid)
            live = [gun.create_bin() for _ in range(bins)]
            gone_last_seq = 0
            out["start"] = {"rss_mib": mib(memory_kib(pid)["VmRSS"]), **file_sizes(db)}
            answered, next_churn, t0 = 0, churn_every, time.monotonic()
            while answered < target:
                paths = [f"/h/{b['id']}" for b in live]
                load = run_wrk(gun.url + paths[0], CONNECTIONS, segment_seconds, paths=paths)
                answered += load["ok_2xx"]
                segment = {
                    "answered": answered,
                    "elapsed_s": round(time.monotonic() - t0, 1),
                    "per_s": round(load["ok_2xx"] / (load["duration_us"] / 1e6)),
                    "p50_ms": load["p50_us"] / 1000,
                    "p99_ms": load["p99_us"] / 1000,
                    "max_ms": load["max_us"] / 1000,
                    "non_2xx": load["non_2xx"],
                    "errors": sum(load[k] for k in ("err_connect", "err_read", "err_write")),
                    "timeouts": load["err_timeout"],
                    "rss_mib": mib(memory_kib(pid)["VmRSS"]),
                    **file_sizes(db),
                }
                out["segments"].append(segment)
                print(f"  soak {answered:>9,} answered  {segment['per_s']}/s  p99 "
                      f"{segment['p99_ms']:.1f} ms  RSS {segment['rss_mib']} MiB  db "
                      f"{segment['db_mib']} MiB (free pages {segment['free_pages']})  WAL "
                      f"{segment['wal_mib']} MiB", flush=True)  # fmt: skip
                if answered >= next_churn and answered < target:
                    next_churn += churn_every
                    gone_last_seq += replace_bins(gun, live, churn)
                    out["churned"] += churn
            out["elapsed_s"] = round(time.monotonic() - t0, 1)
            out["accounting"] = account(gun, live, gone_last_seq, out["segments"], keep)
            time.sleep(2)  # the indexer's last batch, the last checkpoint
            out["end"] = {"rss_mib": mib(memory_kib(pid)["VmRSS"]), **file_sizes(db)}
        finally:
            gun.stop()
            found = problems(gun.log_text())
            out["log_problem_count"], out["log_problems"] = len(found), found[:20]
    out["summary"] = summarise(out)
    print_table(out)
    return out


def replace_bins(gun, live: list[dict], n: int) -> int:
    """Delete the ``n`` oldest bins (as expiry would) and create new ones; return the deleted
    bins' last sequence numbers, summed (taken once what was in flight has been stored)."""
    total = 0
    for _ in range(n):
        old = live.pop(0)
        total += settled_last_seq(gun.url, old["id"], old["read_key"])
        r = requests.delete(
            f"{gun.url}/api/v1/bins/{old['id']}", headers=bearer(old["read_key"]), timeout=60
        )
        r.raise_for_status()
        live.append(gun.create_bin())
    return total


def account(gun, live: list[dict], gone_last_seq: int, segments: list[dict], keep: int) -> dict:
    """Every 2xx stored: the bins' sequence numbers against the answers; retention kept."""
    stored = gone_last_seq
    over_keep = []
    for b in live:
        stored += settled_last_seq(gun.url, b["id"], b["read_key"])
        info = requests.get(
            f"{gun.url}/api/v1/bins/{b['id']}", headers=bearer(b["read_key"]), timeout=30
        ).json()
        if info["request_count"] != min(keep, info["last_seq"]):
            over_keep.append((b["id"], info["request_count"], info["last_seq"]))
    answered = segments[-1]["answered"] if segments else 0
    # wrk stops each segment with up to one request per connection unanswered; those are stored.
    slack = sum(CONNECTIONS + s["timeouts"] + s["errors"] for s in segments)
    return {
        "answered_2xx": answered,
        "stored_seqs": stored,
        "lost": max(0, answered - stored),
        "unanswered_but_stored": stored - answered,
        "ok": answered <= stored <= answered + slack and not over_keep,
        "bins_not_at_retention": over_keep[:10],
    }


def summarise(out: dict) -> dict:
    segs = out["segments"]
    if not segs:
        return {}
    first = segs[0]
    last = segs[-1]
    return {
        "captures_per_s": round(out["accounting"]["answered_2xx"] / out["elapsed_s"]),
        "p99_first_segment_ms": first["p99_ms"],
        "first_segment_captures": first["answered"],
        "p99_last_segment_ms": last["p99_ms"],
        "p99_median_ms": round(statistics.median(s["p99_ms"] for s in segs), 1),
        # The segments that hold the first 10,000 captures, and the last 10,000.
        "p99_first_10000_ms": max(s["p99_ms"] for s in segs[: _covering(segs, 10_000)]),
        "p99_last_10000_ms": max(s["p99_ms"] for s in _last(segs, 10_000)),
        "p99_max_ms": max(s["p99_ms"] for s in segs),
        "rss_start_mib": out["start"]["rss_mib"],
        "rss_after_first_segment_mib": first["rss_mib"],
        "rss_max_mib": max(s["rss_mib"] for s in segs),
        "rss_end_mib": out["end"]["rss_mib"],
        "db_max_mib": max(s["db_mib"] for s in segs),
        "db_end_mib": out["end"]["db_mib"],
        "wal_max_mib": max(s["wal_mib"] for s in segs),
        "wal_end_mib": out["end"]["wal_mib"],
        "non_2xx": sum(s["non_2xx"] for s in segs),
        "socket_errors": sum(s["errors"] for s in segs),
        "timeouts": sum(s["timeouts"] for s in segs),
    }


def _covering(segs: list[dict], captures: int) -> int:
    """How many segments from the start it takes to answer ``captures``."""
    return next((i + 1 for i, s in enumerate(segs) if s["answered"] >= captures), len(segs))


def _last(segs: list[dict], captures: int) -> list[dict]:
    """The last segments that together answered at least ``captures``."""
    end = segs[-1]["answered"]
    return [
        s for i, s in enumerate(segs) if i == len(segs) - 1 or end - segs[i]["answered"] < captures
    ]


def print_table(out: dict) -> None:
    segs = out["segments"]
    print(f"\nsoak: {out['accounting']['answered_2xx']:,} captures answered 2xx into "
          f"{out['bins']} bins (retention {out['keep']}, {out['churned']} bins replaced), "
          f"{out['elapsed_s']} s")  # fmt: skip
    step = max(1, len(segs) // 12)
    shown = segs[::step] + ([segs[-1]] if (len(segs) - 1) % step else [])
    print_rows(
        ["answered", "per s", "p50 ms", "p99 ms", "max ms", "RSS MiB", "db MiB", "free pages",
         "WAL MiB"],
        [[f"{s['answered']:,}", s["per_s"], s["p50_ms"], s["p99_ms"], s["max_ms"], s["rss_mib"],
          s["db_mib"], s["free_pages"], s["wal_mib"]] for s in shown],
    )  # fmt: skip
    s, a = out["summary"], out["accounting"]
    print(f"p99 by segment: over the first 10,000 captures {s['p99_first_10000_ms']} ms, over "
          f"the last 10,000 {s['p99_last_10000_ms']} ms; median {s['p99_median_ms']} ms, worst "
          f"{s['p99_max_ms']} ms")  # fmt: skip
    print(f"RSS: {s['rss_start_mib']} MiB at start, {s['rss_after_first_segment_mib']} after the "
          f"first segment, {s['rss_max_mib']} max, {s['rss_end_mib']} at the end")  # fmt: skip
    print(f"SQLite: file {s['db_max_mib']} MiB max, {s['db_end_mib']} at the end; WAL "
          f"{s['wal_max_mib']} MiB max, {s['wal_end_mib']} at the end")  # fmt: skip
    print(f"every 2xx stored: {'yes' if a['ok'] else 'NO'} ({a['answered_2xx']:,} answered, "
          f"{a['stored_seqs']:,} numbered, lost {a['lost']}); non-2xx {s['non_2xx']}, socket "
          f"errors {s['socket_errors']}, timeouts {s['timeouts']}; log problems "
          f"{out['log_problem_count']}")  # fmt: skip
