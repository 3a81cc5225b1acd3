"""Hookscope benchmarks: ingest throughput and live latency under gunicorn, per worker class.

    .venv/bin/python bench/run.py [--quick] [--runs 3] [--workers gevent] [--access-log on|off]
        [--only ingest,live,live1,profile,big,memory,scaleout,index,forward,relay,
                budget,admin,sizing,soak,answers]

Every scenario runs against a fresh gunicorn (tests/harness.py, production settings from
app/runtime/serving.py) on 127.0.0.1 with a fresh SQLite file (or PostgreSQL database), and stops by
itself. ingest and live1 are also measured against a bare WSGI app (bench/bare_app.py) in the
same runs, as a reference. Prints a table of medians over the runs and writes everything to
bench/results/<name>-<timestamp>.json. big, memory and scaleout use the first of --workers.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import answers
import big_bins
import budgets
import forward
import index_cost
import ingest
import live_latency
import memory
import profiling
import relay
import scaleout
import soak
from common import BareServer, cpu_seconds, problems, worker_pids

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

RESULTS = HERE / "results"
WORKER_ENV = {
    "gevent": {},
    # The same worker with /metrics on, or JSON log lines: what each costs a capture.
    "gevent-metrics": {"HOOKSCOPE_METRICS": "true"},
    "gevent-jsonlogs": {"HOOKSCOPE_LOG_FORMAT": "json"},
}
PER_WORKER_CLASS = {"ingest", "live", "live1", "profile"}
SEPARATE = {
    "big",
    "memory",
    "scaleout",
    "index",
    "forward",
    "relay",
    "budget",
    "admin",
    "sizing",
    "soak",
    "answers",
}
# The bare reference app's column, and the scenarios measured against it too.
BARE = "bare"
WITH_BARE = {"ingest", "live1"}
BARE_PATH = "/h/bare"
# live1's unmeasured captures before the measured ones: connections, caches and the watcher's
# first frames settle.
LIVE1_WARMUP = 200


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick", action="store_true", help="1 run, 3 s loads, 100 captures, 500 back to back"
    )
    ap.add_argument(
        "--only",
        default="ingest,live,live1",
        help="ingest,live,live1,profile,big,memory,scaleout,index,forward,relay,budget,admin,sizing,"
        "soak,answers (comma separated)",
    )
    ap.add_argument("--runs", type=int, default=None, help="repetitions (default 3, quick 1)")
    ap.add_argument("--workers", default="gevent", help="worker classes to compare")
    ap.add_argument("--connections", default="32,256")
    ap.add_argument("--seconds", type=float, default=None, help="per ingest load (default 10)")
    ap.add_argument("--watchers", default="1,100")
    ap.add_argument("--captures", type=int, default=None, help="live captures (default 300)")
    ap.add_argument(
        "--live1-captures",
        type=int,
        default=None,
        help="live1: measured captures, back to back, one watcher (default 2000, quick 500)",
    )
    ap.add_argument("--watcher-processes", type=int, default=4)
    ap.add_argument(
        "--watcher-client",
        choices=live_latency.CLIENTS,
        default="async",
        help="python-socketio AsyncClient (aiohttp) or the threaded Client (see bench/README.md)",
    )
    ap.add_argument(
        "--pause-ms",
        type=float,
        default=live_latency.PAUSE_S * 1000,
        help="quiet time between one capture reaching every watcher and the next POST",
    )
    ap.add_argument("--profile-seconds", type=int, default=10)
    ap.add_argument(
        "--access-log",
        choices=("on", "off"),
        default="on",
        help="on = production (app/runtime/serving.py logs every request); off = /dev/null",
    )
    ap.add_argument(
        "--code",
        choices=("head", "worktree"),
        default="head",
        help="serve a snapshot of the last commit (default: others may be editing app/) "
        "or the working tree as it is",
    )
    ap.add_argument("--big-rows", type=int, default=1_000_000, help="requests in the big bin")
    ap.add_argument(
        "--big-db",
        default="sqlite,postgres" if os.environ.get("HOOKSCOPE_TEST_POSTGRES_URL") else "sqlite",
        help="sqlite,postgres (postgres needs HOOKSCOPE_TEST_POSTGRES_URL)",
    )
    ap.add_argument(
        "--index-captures", type=int, default=10_000, help="captures per index-cost measurement"
    )
    ap.add_argument("--memory-body-mib", type=float, default=25.0, help="large body size")
    ap.add_argument("--memory-captures", type=int, default=100_000, help="1 KB captures")
    ap.add_argument(
        "--memory-seconds", type=float, default=150.0, help="time cap for the 1 KB captures"
    )
    ap.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/0",
        help="scaleout's Redis; when it does not answer, a private redis-server is started",
    )
    ap.add_argument(
        "--scaleout-bins",
        type=int,
        default=1,
        help="scaleout: spread the load over this many bins (1 = one hot bin)",
    )
    ap.add_argument(
        "--scaleout-connections",
        type=int,
        default=32,
        help="scaleout: wrk connections (the issue's ingest figures use 32 and 256)",
    )
    ap.add_argument(
        "--relay-rate", type=int, default=500, help="relay: captures a second through forward"
    )
    ap.add_argument("--relay-seconds", type=float, default=10.0, help="relay: seconds at that rate")
    ap.add_argument(
        "--baseline",
        default="HEAD",
        help="budget: the commit to compare with (with --baseline-patch applied)",
    )
    ap.add_argument(
        "--baseline-patch",
        default=str(budgets.NO_ACCOUNTING.relative_to(ROOT)),
        help="budget: applied to the baseline to take storage accounting out ('none': as is)",
    )
    ap.add_argument("--admin-bins", type=int, default=100_000, help="admin: bins listed")
    ap.add_argument(
        "--soak-captures", type=int, default=1_000_000, help="soak: 2xx answers to reach"
    )
    ap.add_argument("--soak-bins", type=int, default=100, help="soak: bins loaded in turn")
    ap.add_argument("--soak-keep", type=int, default=1000, help="soak: retention per bin")
    ap.add_argument(
        "--soak-churn", type=int, default=10, help="soak: bins replaced every 100,000 captures"
    )
    ap.add_argument("--name", default="bench")
    args = ap.parse_args()
    args.only = set(args.only.split(","))
    unknown = args.only - PER_WORKER_CLASS - SEPARATE
    if unknown:
        ap.error(f"--only: unknown {', '.join(sorted(unknown))}")
    args.workers = args.workers.split(",")
    for w in args.workers:
        if w not in WORKER_ENV:
            ap.error(f"--workers: {w!r} is not one of {', '.join(WORKER_ENV)}")
    args.runs = args.runs or (1 if args.quick else 3)
    args.seconds = args.seconds or (3.0 if args.quick else 10.0)
    args.captures = args.captures or (100 if args.quick else 300)
    args.live1_captures = args.live1_captures or (500 if args.quick else 2000)
    args.connections = [int(x) for x in args.connections.split(",")]
    args.watchers = [int(x) for x in args.watchers.split(",")]
    args.big_db = args.big_db.split(",")
    if "postgres" in args.big_db and not os.environ.get("HOOKSCOPE_TEST_POSTGRES_URL"):
        ap.error("--big-db postgres needs HOOKSCOPE_TEST_POSTGRES_URL")
    if "scaleout" in args.only and not os.environ.get("HOOKSCOPE_TEST_POSTGRES_URL"):
        ap.error("scaleout needs HOOKSCOPE_TEST_POSTGRES_URL (a role that may create databases)")
    return args


def load_harness(code: str):
    """Import tests/harness.py from the code under test; it serves the app from its own folder."""
    root = ROOT
    if code == "head":
        root = Path(tempfile.mkdtemp(prefix="hookscope-bench-code-"))
        archive = subprocess.run(
            ["git", "archive", "HEAD"], cwd=ROOT, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive.stdout, check=True)
    sys.path.insert(0, str(root / "tests"))
    return importlib.import_module("harness"), root


HARNESS = None  # tests/harness.py of the code under test: set in main() by load_harness


def server(worker: str, workdir: Path, access_log: str, extra: dict[str, str] | None = None):
    """A gunicorn with production settings; ``extra`` environment overrides the defaults here."""
    env = {
        **WORKER_ENV[worker],
        # Pin SQLite even if HOOKSCOPE_TEST_SUITE_DB points the tests at PostgreSQL.
        "DATABASE_URL": f"sqlite:///{workdir / 'hookscope.db'}",
        # Keep every capture: retention would make stored rows differ from answered ones.
        "HOOKSCOPE_MAX_REQUESTS_CEILING": "10000000",
        "HOOKSCOPE_DEFAULT_MAX_REQUESTS": "10000000",
        # and every byte: no bin's byte budget drops any (1 TiB), no instance budget.
        "HOOKSCOPE_BIN_MAX_BYTES": str(1 << 40),
        "HOOKSCOPE_MAX_STORAGE_BYTES": "0",
    }
    if access_log == "off":
        # GUNICORN_CMD_ARGS overrides the config file (app/runtime/serving.py sets accesslog="-").
        env["GUNICORN_CMD_ARGS"] = "--access-logfile /dev/null"
    return HARNESS.Gunicorn(workdir, env={**env, **(extra or {})})


def one_server(target: str, args: argparse.Namespace, run: int) -> dict:
    """Start a fresh server (the app for a worker class, or the bare app) and run the selected
    scenarios against it."""
    out: dict = {"worker": target, "run": run, "ingest": [], "live": [], "live1": [], "errors": []}
    with tempfile.TemporaryDirectory(prefix="hookscope-bench-") as tmp:
        if target == BARE:
            gun, run_scenarios = BareServer(Path(tmp), HARNESS.free_port()), bare_scenarios
        else:
            gun, run_scenarios = server(target, Path(tmp), args.access_log), scenarios
        try:
            gun.start()
            run_scenarios(gun, target, args, run, out)
        except Exception as exc:  # noqa: BLE001 - a broken run is reported, the others go on
            out["errors"].append(f"{type(exc).__name__}: {exc}")
            print(f"  {target} run {run} FAILED: {type(exc).__name__}: {exc}", flush=True)
        finally:
            gun.stop()
            log = gun.log_text()
        out["log_problems"] = problems(log)[:40]
        out["log_problem_count"] = len(problems(log))
        if out["errors"] or out["log_problem_count"]:
            RESULTS.mkdir(exist_ok=True)
            kept = RESULTS / f"{args.name}-{args.started}-{target}-run{run}.log"
            shutil.copyfile(gun.log_path, kept)
            out["server_log"] = str(kept)
    return out


def scenarios(gun, worker: str, args: argparse.Namespace, run: int, out: dict) -> None:
    """Run ingest, live, live1 and profile (as selected) against one running server."""
    pid = worker_pids(gun.proc.pid)[0]
    if "ingest" in args.only:

        def load(c: int) -> dict:
            created = gun.create_bin()
            bin_id, key = created["id"], created["read_key"]
            return ingest.ingest(gun.url, bin_id, key, c, args.seconds, page=not args.quick)

        ingest_loads(pid, worker, run, args, out, load)
    if "live" in args.only:
        for w in args.watchers:
            procs = 1 if w == 1 else args.watcher_processes
            r = watch(gun, pid, args, w, args.captures, procs, pause_s=args.pause_ms / 1000)
            out["live"].append(r)
            print_live(f"{worker} run {run} live w={w}", r)
    if "live1" in args.only:
        r = watch(gun, pid, args, 1, args.live1_captures, 1, pause_s=0, warmup=LIVE1_WARMUP)
        out["live1"].append(r)
        print_live(f"{worker} run {run} live1 (back to back)", r)
    if "profile" in args.only and run == 1:
        out["profile"] = profile(gun, pid, worker, args)


def bare_scenarios(
    bare: BareServer, target: str, args: argparse.Namespace, run: int, out: dict
) -> None:
    """Run ingest's load and live1's POSTs (as selected) against the bare app."""
    pid = worker_pids(bare.proc.pid)[0]
    if "ingest" in args.only:
        url = bare.url + BARE_PATH
        ingest_loads(pid, target, run, args, out, lambda c: ingest.bare(url, c, args.seconds))
    if "live1" in args.only:
        r = live_latency.post_back_to_back(bare.url, BARE_PATH, args.live1_captures, LIVE1_WARMUP)
        out["live1"].append(r)
        print(f"  {target} run {run} live1 (back to back): POST p50 {fmt(r['post_p50_ms'], 2)} "
              f"p99 {fmt(r['post_p99_ms'], 2)} ms {r['errors'][:2]}", flush=True)  # fmt: skip


def ingest_loads(
    pid: int, target: str, run: int, args: argparse.Namespace, out: dict, load: Callable
) -> None:
    """Run ``load(connections)`` for each connection count; add the worker's CPU use to each."""
    for c in args.connections:
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        r = load(c)
        r["worker_cpu_pct"] = round(100 * (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0), 1)
        out["ingest"].append(r)
        stored = (
            f" lost {r['lost']} (+{r['unanswered_but_stored']} unanswered, stored)"
            if "lost" in r
            else ""
        )
        print(f"  {target} run {run} ingest c={c}: {r['captures_per_s']}/s "
              f"p50 {r['p50_ms']:.1f} ms p99 {r['p99_ms']:.1f} ms "
              f"non2xx {r['non_2xx']} timeouts {r['timeouts']}{stored} "
              f"cpu {r['worker_cpu_pct']}%", flush=True)  # fmt: skip


def watch(
    gun, pid: int, args: argparse.Namespace, watchers: int, captures: int, processes: int,
    pause_s: float, warmup: int = 10,
) -> dict:  # fmt: skip
    """Measure live latency on a fresh bin; add the worker's CPU per capture."""
    created = gun.create_bin()
    cpu0 = cpu_seconds(pid)
    r = live_latency.measure(
        gun.url, created["id"], created["read_key"], watchers, captures, processes,
        warmup=warmup, client=args.watcher_client, pause_s=pause_s,
    )  # fmt: skip
    # Includes connecting the watchers, spread over the captures (about 0.3 ms for 100).
    r["worker_cpu_ms_per_capture"] = round(
        1000 * (cpu_seconds(pid) - cpu0) / max(1, r["captures"] + r["warmup"]), 2
    )
    return r


def print_live(label: str, r: dict) -> None:
    print(f"  {label}: at the socket p50 {fmt(r['wire_p50_ms'], 2)} "
          f"p99 {fmt(r['wire_p99_ms'], 2)} ms; in the handler p50 {fmt(r['p50_ms'], 2)} "
          f"p99 {fmt(r['p99_ms'], 2)} ms (all watchers p99 "
          f"{fmt(r['all_watchers_p99_ms'], 2)}); POST p50 {fmt(r['post_p50_ms'], 2)} "
          f"p99 {fmt(r['post_p99_ms'], 2)} ms; missing {r['events_missing']} "
          f"connected {r['connected']}/{r['watchers']} load {r['loadavg'][1]:.2f} "
          f"{r['errors'][:2]}{' wire: ' + r['wire_error'] if r['wire_error'] else ''}",
          flush=True)  # fmt: skip


def profile(gun, pid: int, worker: str, args: argparse.Namespace) -> dict:
    """Profile the worker under 32-connection ingest load (two py-spy passes: raw, then SVG)."""
    if not profiling.available():
        return {"error": "py-spy not installed (.venv/bin/pip install py-spy)"}
    bin_id = gun.create_bin()["id"]
    secs = args.profile_seconds
    load: dict = {}
    t = threading.Thread(
        target=lambda: load.update(ingest.run_load(f"{gun.url}/h/{bin_id}", 32, 2 * secs + 6)),
        daemon=True,
    )
    t.start()
    time.sleep(2)  # let the load reach steady state
    stamp = time.strftime("%Y%m%d-%H%M%S")
    RESULTS.mkdir(exist_ok=True)
    result = profiling.record(pid, secs, RESULTS / f"profile-{worker}-{stamp}")
    t.join(timeout=4 * secs + 60)
    result["load_captures_per_s"] = round(load.get("ok_2xx", 0) / (2 * secs + 6), 1)
    return result


def fmt(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def med(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


# Rows of the table: (metric, field of a result or None for socket errors + timeouts, aggregate).
METRICS = {
    "ingest": [
        ("captures/s", "captures_per_s", med),
        ("p50 ms", "p50_ms", med),
        ("p99 ms", "p99_ms", med),
        ("non-2xx (sum)", "non_2xx", sum),
        ("socket errors+timeouts (sum)", None, sum),
        ("lost: 2xx not stored (sum)", "lost", sum),
        ("stored-but-unanswered (max)", "unanswered_but_stored", max),
        ("worker CPU %", "worker_cpu_pct", med),
    ],
    "live": [
        ("at the socket p50 ms", "wire_p50_ms", med),
        ("at the socket p99 ms", "wire_p99_ms", med),
        ("at the socket, last watcher p50 ms", "wire_all_watchers_p50_ms", med),
        ("in the handler p50 ms", "p50_ms", med),
        ("in the handler p99 ms", "p99_ms", med),
        ("in the handler, last watcher p50 ms", "all_watchers_p50_ms", med),
        ("in the handler, last watcher p99 ms", "all_watchers_p99_ms", med),
        ("missing events (sum)", "events_missing", sum),
        ("watchers connected (min)", "connected", min),
        ("POST p50 ms", "post_p50_ms", med),
        ("POST p99 ms", "post_p99_ms", med),
        ("worker CPU ms per capture", "worker_cpu_ms_per_capture", med),
        ("watchers' CPU ms per capture", "watcher_cpu_ms_per_capture", med),
        ("load avg (1 min, at the end)", "loadavg_end", med),
    ],
    "live1": [
        ("at the socket p50 ms", "wire_p50_ms", med),
        ("at the socket p99 ms", "wire_p99_ms", med),
        ("in the handler p50 ms", "p50_ms", med),
        ("in the handler p99 ms", "p99_ms", med),
        ("POST p50 ms", "post_p50_ms", med),
        ("POST p99 ms", "post_p99_ms", med),
        ("captures measured (min)", "captures", min),
        ("missing events (sum)", "events_missing", sum),
        ("worker CPU ms per capture", "worker_cpu_ms_per_capture", med),
        ("load avg (1 min, at the end)", "loadavg_end", med),
    ],
}


def columns(args: argparse.Namespace) -> list[str]:
    """The table's columns: the bare app when a scenario measured it, then the worker classes."""
    return ([BARE] if args.only & WITH_BARE else []) + args.workers


def summarise(runs: list[dict], args: argparse.Namespace) -> list[dict]:
    """One row per scenario and metric: the median over runs for each column."""
    rows = []
    for kind, key_name, keys, label in (
        ("ingest", "connections", args.connections, "ingest c={}"),
        ("live", "watchers", args.watchers, "live w={}"),
        ("live1", None, [None], "live1 w=1 back to back"),
    ):
        if kind not in args.only:
            continue
        for k in keys:
            for metric, field, agg in METRICS[kind]:
                row = {"scenario": label.format(k), "metric": metric}
                for col in columns(args):
                    vals = [value(r, field) for _, r in results(runs, col, kind, key_name, k)]
                    vals = [v for v in vals if v is not None]
                    row[col] = agg(vals) if vals else None
                    row[f"{col}_runs"] = vals
                rows.append(row)
                if field == "captures_per_s" and BARE in row:
                    rows += bare_ratios(row, runs, args.workers, k)
    return rows


def results(
    runs: list[dict], column: str, kind: str, key_name: str | None, key: int | None
) -> list[tuple[int, dict]]:
    """(run number, result) of one column's runs for one scenario and key (None: every key)."""
    return [
        (run["run"], r) for run in runs if run["worker"] == column
        for r in run[kind] if key_name is None or r[key_name] == key
    ]  # fmt: skip


def value(result: dict, field: str | None) -> float | None:
    if field is None:
        return result["socket_errors"] + result["timeouts"]
    return result.get(field)


def bare_ratios(row: dict, runs: list[dict], workers: list[str], connections: int) -> list[dict]:
    """Two rows: each worker class's captures/s over the bare app's, per run and of the medians.

    Each run's ratio pairs the app with the bare app measured in that same run, so drift between
    runs cancels; the ratio of the medians can pair a good run of one with a bad run of the other.
    """
    bare = {
        n: r["captures_per_s"] for n, r in results(runs, BARE, "ingest", "connections", connections)
    }
    per_run = {
        w: [
            r["captures_per_s"] / bare[n]
            for n, r in results(runs, w, "ingest", "connections", connections)
            if bare.get(n)
        ]
        for w in workers
    }
    label = row["scenario"]
    paired = {"scenario": label, "metric": "captures/s / bare app's, median of runs", BARE: None}
    of_medians = {"scenario": label, "metric": "captures/s / bare app's, of medians", BARE: None}
    for w in workers:
        paired[w] = med(per_run[w])
        paired[f"{w}_runs"] = [round(x, 3) for x in per_run[w]]
        of_medians[w] = row[w] / row[BARE] if row[w] is not None and row[BARE] else None
    return [paired, of_medians]


def cell(x: float | None) -> str:
    """A table cell: counts as they are, small values to two decimals, others to one."""
    if x is None:
        return "-"
    if isinstance(x, int):
        return str(x)
    return f"{x:.2f}" if abs(x) < 10 else f"{x:.1f}"


def print_table(rows: list[dict], cols: list[str], workers: list[str]) -> None:
    """Print the rows; with two worker classes, a last column gives the second over the first."""
    ratio = len(workers) == 2
    head = ["scenario", "metric", *cols] + ([f"{workers[1]}/{workers[0]}"] if ratio else [])
    lines = [head]
    for row in rows:
        cells = [row["scenario"], row["metric"], *(cell(row[c]) for c in cols)]
        if ratio:
            a, b = row[workers[0]], row[workers[1]]
            cells.append(f"{b / a:.2f}x" if a and b is not None else "-")
        lines.append(cells)
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    for n, line in enumerate(lines):
        print("  ".join(str(c).ljust(widths[i]) for i, c in enumerate(line)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def environment(args: argparse.Namespace) -> dict:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "generator": ingest.generator(),
        "git_commit": commit,
        "git_dirty": bool(
            subprocess.run(
                ["git", "status", "--porcelain", "app"], cwd=ROOT, capture_output=True, text=True
            ).stdout.strip()
        ),
        "args": {k: sorted(v) if isinstance(v, set) else v for k, v in vars(args).items()},
    }


def main() -> int:
    global HARNESS
    args = parse_args()
    env = environment(args)
    started = args.started = time.strftime("%Y%m%d-%H%M%S")
    HARNESS, code_root = load_harness(args.code)
    env["code"] = f"{args.code} ({code_root})"
    print(f"hookscope bench: {args.runs} run(s), workers {args.workers}, "
          f"generator {env['generator']}, access log {args.access_log}, "
          f"load avg {env['loadavg_start'][0]:.2f}", flush=True)  # fmt: skip
    runs = []
    targets = columns(args)
    for run in range(1, args.runs + 1) if args.only & PER_WORKER_CLASS else ():
        # Alternate the order so drift on a shared machine favours neither the bare app nor a class.
        order = targets if run % 2 else list(reversed(targets))
        for target in order:
            print(f"run {run}/{args.runs}: {target}", flush=True)
            runs.append(one_server(target, args, run))
    rows = summarise(runs, args)
    if runs:
        print()
        ratio = f"; ratio = {args.workers[1]} / {args.workers[0]}" if len(args.workers) == 2 else ""
        print(f"medians of {args.runs} run(s){ratio}")
        print_table(rows, targets, args.workers)
    for run in runs:
        if run["log_problem_count"] or run["errors"]:
            print(f"\n{run['worker']} run {run['run']}: errors {run['errors']}; "
                  f"{run['log_problem_count']} problem lines in the server log "
                  f"({run.get('server_log')}), first: {run['log_problems'][:3]}")  # fmt: skip
        if "profile" in run:
            print_profile(run["worker"], run["profile"])
    extra = separate_scenarios(HARNESS, args)
    env["loadavg_end"] = os.getloadavg()
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{args.name}-{started}.json"
    report = {"environment": env, "summary": rows, "runs": runs, **extra}
    path.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {path.relative_to(ROOT)}")
    if args.code == "head":
        shutil.rmtree(code_root, ignore_errors=True)
    return 0


def separate_scenarios(harness, args: argparse.Namespace) -> dict:
    """Run big, memory, scaleout, index, forward, relay, budget, admin, sizing, soak and answers
    (as selected): each makes the servers it needs."""
    worker = args.workers[0]
    launch = partial(_launch, worker, args.access_log)
    out: dict = {}
    names = ("big", "memory", "scaleout", "index", "forward", "relay", "budget", "admin", "sizing")
    for name in (*names, "soak", "answers"):
        if name not in args.only:
            continue
        print(f"\n{name} ({worker}) ...", flush=True)
        t0 = time.monotonic()
        try:
            if name == "big":
                out[name] = big_bins.run(launch, harness, args.big_rows, args.big_db)
            elif name == "forward":
                out[name] = forward.run(launch, harness, args.runs, args.seconds)
            elif name == "index":
                out[name] = index_cost.run(harness, args.index_captures, args.runs, args.big_db)
            elif name == "relay":
                out[name] = relay.run(launch, args.relay_rate, args.relay_seconds)
            elif name == "budget":
                patch = None if args.baseline_patch == "none" else ROOT / args.baseline_patch
                out[name] = budgets.budget_cost(
                    harness, args.baseline, args.runs, args.seconds, args.connections, patch
                )
            elif name == "admin":
                out[name] = budgets.admin_listing(launch, harness, args.admin_bins, args.big_db)
            elif name == "sizing":
                out[name] = budgets.sizing(launch)
            elif name == "answers":
                out[name] = answers.run(launch, args.runs, args.seconds)
            elif name == "soak":
                out[name] = soak.run(
                    launch,
                    args.soak_captures,
                    args.soak_bins,
                    args.soak_keep,
                    churn=args.soak_churn,
                )
            elif name == "memory":
                out[name] = memory.run(
                    launch, args.memory_body_mib, args.memory_captures, args.memory_seconds
                )
            else:
                out[name] = scaleout.run(
                    launch,
                    harness,
                    args.runs,
                    args.seconds,
                    args.redis_url,
                    args.scaleout_bins,
                    args.scaleout_connections,
                )
        except Exception as exc:  # noqa: BLE001 - a broken scenario is reported, the others go on
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"  {name} FAILED: {type(exc).__name__}: {exc}", flush=True)
        out[name]["wall_s"] = round(time.monotonic() - t0, 1)
        print(f"({name}: {out[name]['wall_s']} s wall)", flush=True)
    return out


def _launch(worker: str, access_log: str, workdir: Path, env: dict[str, str]):
    return server(worker, workdir, access_log, env)


def print_profile(worker: str, prof: dict) -> None:
    print(f"\nprofile ({worker}, 32 connections, {prof.get('samples', 0)} samples, "
          f"{prof.get('load_captures_per_s')} captures/s while sampled)")  # fmt: skip
    if "error" in prof:
        print("  error:", prof["error"])
        return
    for title, key in (("capture path (inclusive share of samples)", "components"),
                       ("by library (self time)", "libraries_self"),
                       ("top frames (self time)", "top_self")):  # fmt: skip
        print(f"  {title}:")
        for name, pct in prof[key]:
            print(f"    {pct:5.1f}%  {name}")
    print(f"  flame graph: {prof['svg']}\n  collapsed stacks: {prof['collapsed']}")


if __name__ == "__main__":
    sys.exit(main())
