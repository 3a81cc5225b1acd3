"""Hookscope benchmarks: ingest throughput and live latency under gunicorn, per worker class.

    .venv/bin/python bench/run.py [--quick] [--only ingest,live,profile,big,memory,scaleout,index]
                                  [--runs 3] [--workers gevent] [--access-log on|off]

Every scenario runs against a fresh gunicorn (tests/harness.py, production settings from
app/serving.py) on 127.0.0.1 with a fresh SQLite file (or PostgreSQL database), and stops by
itself. Prints a table of medians over the runs and writes everything to
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
from functools import partial
from pathlib import Path

import big_bins
import index_cost
import ingest
import live_latency
import memory
import profiling
import scaleout
from common import cpu_seconds, problems, worker_pids

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

RESULTS = HERE / "results"
WORKER_ENV = {
    "gevent": {},
}
PER_WORKER_CLASS = {"ingest", "live", "profile"}
SEPARATE = {"big", "memory", "scaleout", "index"}


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 run, 3 s loads, 100 captures")
    ap.add_argument(
        "--only",
        default="ingest,live",
        help="ingest,live,profile,big,memory,scaleout,index (comma separated)",
    )
    ap.add_argument("--runs", type=int, default=None, help="repetitions (default 3, quick 1)")
    ap.add_argument("--workers", default="gevent", help="worker classes to compare")
    ap.add_argument("--connections", default="32,256")
    ap.add_argument("--seconds", type=float, default=None, help="per ingest load (default 10)")
    ap.add_argument("--watchers", default="1,100")
    ap.add_argument("--captures", type=int, default=None, help="live captures (default 300)")
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
        help="on = production (app/serving.py logs every request); off = /dev/null",
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


Gunicorn: type = None  # set in main() by load_harness


def server(worker: str, workdir: Path, access_log: str, extra: dict[str, str] | None = None):
    """A gunicorn with production settings; ``extra`` environment overrides the defaults here."""
    env = {
        **WORKER_ENV[worker],
        # Pin SQLite even if HOOKSCOPE_TEST_SUITE_DB points the tests at PostgreSQL.
        "DATABASE_URL": f"sqlite:///{workdir / 'hookscope.db'}",
        # Keep every capture: retention would make stored rows differ from answered ones.
        "HOOKSCOPE_MAX_REQUESTS_CEILING": "10000000",
        "HOOKSCOPE_DEFAULT_MAX_REQUESTS": "10000000",
    }
    if access_log == "off":
        # GUNICORN_CMD_ARGS overrides the config file (app/serving.py sets accesslog="-").
        env["GUNICORN_CMD_ARGS"] = "--access-logfile /dev/null"
    return Gunicorn(workdir, env={**env, **(extra or {})})


def one_server(worker: str, args: argparse.Namespace, run: int) -> dict:
    """Start a fresh server for one worker class and run the selected scenarios against it."""
    out: dict = {"worker": worker, "run": run, "ingest": [], "live": [], "errors": []}
    with tempfile.TemporaryDirectory(prefix="hookscope-bench-") as tmp:
        gun = server(worker, Path(tmp), args.access_log)
        try:
            gun.start()
            scenarios(gun, worker, args, run, out)
        except Exception as exc:  # noqa: BLE001 - a broken run is reported, the others go on
            out["errors"].append(f"{type(exc).__name__}: {exc}")
            print(f"  {worker} run {run} FAILED: {type(exc).__name__}: {exc}", flush=True)
        finally:
            gun.stop()
            log = gun.log_text()
        out["log_problems"] = problems(log)[:40]
        out["log_problem_count"] = len(problems(log))
        if out["errors"] or out["log_problem_count"]:
            RESULTS.mkdir(exist_ok=True)
            kept = RESULTS / f"{args.name}-{args.started}-{worker}-run{run}.log"
            shutil.copyfile(gun.log_path, kept)
            out["server_log"] = str(kept)
    return out


def scenarios(gun, worker: str, args: argparse.Namespace, run: int, out: dict) -> None:
    """Run ingest, live and profile (as selected) against one running server."""
    pid = worker_pids(gun.proc.pid)[0]
    if "ingest" in args.only:
        for c in args.connections:
            created = gun.create_bin()
            bin_id, key = created["id"], created["read_key"]
            cpu0, t0 = cpu_seconds(pid), time.monotonic()
            r = ingest.ingest(gun.url, bin_id, key, c, args.seconds, page=not args.quick)
            r["worker_cpu_pct"] = round(
                100 * (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0), 1
            )
            out["ingest"].append(r)
            print(f"  {worker} run {run} ingest c={c}: {r['captures_per_s']}/s "
                  f"p50 {r['p50_ms']:.1f} ms p99 {r['p99_ms']:.1f} ms "
                  f"non2xx {r['non_2xx']} timeouts {r['timeouts']} lost {r['lost']} "
                  f"(+{r['unanswered_but_stored']} unanswered, stored) "
                  f"cpu {r['worker_cpu_pct']}%", flush=True)  # fmt: skip
    if "live" in args.only:
        for w in args.watchers:
            created = gun.create_bin()
            procs = 1 if w == 1 else args.watcher_processes
            cpu0 = cpu_seconds(pid)
            r = live_latency.measure(
                gun.url, created["id"], created["read_key"], w, args.captures, procs,
                client=args.watcher_client, pause_s=args.pause_ms / 1000,
            )  # fmt: skip
            # Includes connecting the watchers, spread over the captures (about 0.3 ms for 100).
            r["worker_cpu_ms_per_capture"] = round(
                1000 * (cpu_seconds(pid) - cpu0) / max(1, r["captures"] + 10), 2
            )
            out["live"].append(r)
            print(f"  {worker} run {run} live w={w}: at the socket p50 {fmt(r['wire_p50_ms'])} "
                  f"p99 {fmt(r['wire_p99_ms'])} ms; in the handler p50 {fmt(r['p50_ms'])} "
                  f"p99 {fmt(r['p99_ms'])} ms (all watchers p99 "
                  f"{fmt(r['all_watchers_p99_ms'])}) missing {r['events_missing']} "
                  f"connected {r['connected']}/{w} load {r['loadavg'][1]:.2f} "
                  f"{r['errors'][:2]}{' wire: ' + r['wire_error'] if r['wire_error'] else ''}",
                  flush=True)  # fmt: skip
    if "profile" in args.only and run == 1:
        out["profile"] = profile(gun, pid, worker, args)


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


def summarise(runs: list[dict], args: argparse.Namespace) -> list[dict]:
    """One row per scenario and metric: the median over runs for each worker class."""
    rows = []
    metrics = {
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
            ("worker CPU ms per capture", "worker_cpu_ms_per_capture", med),
            ("watchers' CPU ms per capture", "watcher_cpu_ms_per_capture", med),
            ("load avg (1 min, at the end)", "loadavg_end", med),
        ],
    }
    for kind, keys in (("ingest", args.connections), ("live", args.watchers)):
        if kind not in args.only:
            continue
        key_name = "connections" if kind == "ingest" else "watchers"
        for k in keys:
            label = f"{kind} {'c' if kind == 'ingest' else 'w'}={k}"
            for metric, field, agg in metrics[kind]:
                row = {"scenario": label, "metric": metric}
                for w in args.workers:
                    results = [
                        r for run in runs if run["worker"] == w
                        for r in run[kind] if r[key_name] == k
                    ]  # fmt: skip
                    if field is None:
                        vals = [r["socket_errors"] + r["timeouts"] for r in results]
                    else:
                        vals = [r[field] for r in results]
                    vals = [v for v in vals if v is not None]
                    row[w] = agg(vals) if vals else None
                    row[f"{w}_runs"] = vals
                rows.append(row)
    return rows


def print_table(rows: list[dict], workers: list[str]) -> None:
    ratio = len(workers) == 2
    head = ["scenario", "metric", *workers] + ([f"{workers[1]}/{workers[0]}"] if ratio else [])
    lines = [head]
    for row in rows:
        cells = [row["scenario"], row["metric"]]
        cells += [fmt(row[w], 1) if row[w] is not None else "-" for w in workers]
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
    global Gunicorn
    args = parse_args()
    env = environment(args)
    started = args.started = time.strftime("%Y%m%d-%H%M%S")
    harness, code_root = load_harness(args.code)
    Gunicorn = harness.Gunicorn
    env["code"] = f"{args.code} ({code_root})"
    print(f"hookscope bench: {args.runs} run(s), workers {args.workers}, "
          f"generator {env['generator']}, access log {args.access_log}, "
          f"load avg {env['loadavg_start'][0]:.2f}", flush=True)  # fmt: skip
    runs = []
    for run in range(1, args.runs + 1) if args.only & PER_WORKER_CLASS else ():
        # Alternate the order so drift on a shared machine does not favour one class.
        order = args.workers if run % 2 else list(reversed(args.workers))
        for worker in order:
            print(f"run {run}/{args.runs}: {worker}", flush=True)
            runs.append(one_server(worker, args, run))
    rows = summarise(runs, args)
    if runs:
        print()
        ratio = f"; ratio = {args.workers[1]} / {args.workers[0]}" if len(args.workers) == 2 else ""
        print(f"medians of {args.runs} run(s){ratio}")
        print_table(rows, args.workers)
    for run in runs:
        if run["log_problem_count"] or run["errors"]:
            print(f"\n{run['worker']} run {run['run']}: errors {run['errors']}; "
                  f"{run['log_problem_count']} problem lines in the server log "
                  f"({run.get('server_log')}), first: {run['log_problems'][:3]}")  # fmt: skip
        if "profile" in run:
            print_profile(run["worker"], run["profile"])
    extra = separate_scenarios(harness, args)
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
    """Run big, memory, scaleout and index (as selected): each makes the servers it needs."""
    worker = args.workers[0]
    launch = partial(_launch, worker, args.access_log)
    out: dict = {}
    for name in ("big", "memory", "scaleout", "index"):
        if name not in args.only:
            continue
        print(f"\n{name} ({worker}) ...", flush=True)
        t0 = time.monotonic()
        try:
            if name == "big":
                out[name] = big_bins.run(launch, harness, args.big_rows, args.big_db)
            elif name == "index":
                out[name] = index_cost.run(harness, args.index_captures, args.runs, args.big_db)
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
