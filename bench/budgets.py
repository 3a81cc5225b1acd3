"""Operator controls, measured: what storage accounting costs a capture, how fast the admin
listing of 100,000 bins answers, and the memory and disk that bins take (README's sizing table).

* budget: ingest's wrk load on the code under test and on a baseline without storage accounting,
  alternating in the same run; the ratio of captures/s per run. The baseline is a commit
  (``--baseline``, default HEAD) with bench/patches/no-storage-accounting.patch applied: the
  same code with the accounting taken out (no size counted per capture, no ``bins.stored_bytes``
  update or index, no instance budget or free-space check at the gate), so the ratio is what the
  accounting costs and nothing else. ``--baseline-patch none`` compares with the commit as is.
* admin: the schema made by the app, 100,000 bins written straight into ``bins`` (sqlite3
  executemany, psycopg COPY), the app started again over them and ``GET /api/v1/admin/bins``
  timed: the first page, a page half way down, each with the totals it carries.
* sizing: one server; bins written into ``bins`` in steps, each then sent one 1 KiB capture
  through HTTP (so the worker's caches, limiter and settings hold every bin), the worker's
  VmRSS read after each step; and one bin filled with 1,000 captures of 1 KiB, for the bytes
  the database file takes per byte counted against the budgets.
"""

from __future__ import annotations

import importlib.util
import os
import random
import sqlite3
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from common import memory_kib, print_rows, problems, rounds_in, timing, worker_pids
from ingest import BODY, TimedLoad, bearer, together

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ADMIN_TOKEN = "bench-admin-token-0123456789"
SAMPLES, WARMUP = 20, 2
SIZING_STEPS = (100, 1_000, 10_000)
FILLED_REQUESTS = 1_000
# What every bench server keeps: every capture (retention would make counts differ).
KEEP_ALL = {
    "HOOKSCOPE_MAX_REQUESTS_CEILING": "10000000",
    "HOOKSCOPE_DEFAULT_MAX_REQUESTS": "10000000",
    # Budgets counted but never reached: the cost of the accounting, not of dropping requests.
    "HOOKSCOPE_BIN_MAX_BYTES": str(1 << 40),
    "HOOKSCOPE_MAX_STORAGE_BYTES": "0",
}
BIN_COLUMNS = (
    "id", "name", "description", "created_at", "read_key_hash", "last_seq", "request_count",
    "max_requests", "expires_after", "expires_at", "ingest_auth", "ingest_secret_hash", "fixed",
    "settings_version", "max_bytes", "stored_bytes", "last_capture_at", "created_by",
)  # fmt: skip


NO_ACCOUNTING = HERE / "patches" / "no-storage-accounting.patch"


def load_baseline(rev: str, patch: Path | None = None):
    """tests/harness.py of another commit, served from a snapshot of that commit, with
    ``patch`` applied to the snapshot when given (it must apply cleanly, or the bench stops)."""
    root = Path(tempfile.mkdtemp(prefix="hookscope-bench-baseline-"))
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive.stdout, check=True)
    if patch is not None:
        subprocess.run(["git", "apply", str(patch)], cwd=root, check=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    spec = importlib.util.spec_from_file_location("baseline_harness", root / "tests/harness.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module, commit


def budget_cost(
    harness,
    baseline: str,
    runs: int,
    seconds: float,
    connections: list[int],
    patch: Path | None = NO_ACCOUNTING,
) -> dict:
    """Captures/s with storage accounting (the code under test) over the baseline's, per run:
    the median over the run's rounds (common.ROUND_SECONDS) of the two servers' captures/s in
    the same round, both servers up at once."""
    base, commit = load_baseline(baseline, patch)
    named = f"{baseline} ({commit})" + (f" + {patch.name}" if patch is not None else "")
    out: dict = {"baseline": named, "runs": []}
    rounds = rounds_in(seconds)
    for run in range(1, runs + 1):
        result: dict = {"run": run, "rounds": rounds}
        servers: dict = {}
        with (
            tempfile.TemporaryDirectory(prefix="hookscope-budget-accounting-") as tmp_a,
            tempfile.TemporaryDirectory(prefix="hookscope-budget-baseline-") as tmp_b,
        ):
            try:
                for name, module, tmp in (
                    ("accounting", harness, tmp_a),
                    ("baseline", base, tmp_b),
                ):
                    env = {"DATABASE_URL": f"sqlite:///{tmp}/hookscope.db", **KEEP_ALL}
                    servers[name] = module.Gunicorn(Path(tmp), env=env).start()
                for c in connections:
                    result.update(_rounds(servers, run, rounds, seconds / rounds, c))
                    result.update(_together(servers, run, rounds, seconds / rounds, c))
                    print(f"  budget run {run} c={c}: accounting {result[f'accounting c={c}']}/s, "
                          f"baseline {result[f'baseline c={c}']}/s (medians of {rounds} rounds), "
                          f"ratio {result[f'ratio c={c}']} "
                          f"(rounds {result[f'round ratios c={c}']}), lost {result[f'lost c={c}']};"
                          f" worker CPU us/capture {result[f'accounting cpu_us_per_capture c={c}']}"
                          f" vs {result[f'baseline cpu_us_per_capture c={c}']},"
                          f" ratio {result[f'cpu ratio c={c}']}"
                          f" (rounds {result[f'round cpu ratios c={c}']});"
                          f" loaded together: CPU ratio {result[f'together cpu ratio c={c}']}"
                          f" (rounds {result[f'round together cpu ratios c={c}']})",
                          flush=True)  # fmt: skip
            finally:
                for name, gun in servers.items():
                    gun.stop()
                    result[f"{name} log problems"] = len(problems(gun.log_text()))
        out["runs"].append(result)
    out["ratio_median"] = {
        c: statistics.median(r[f"ratio c={c}"] for r in out["runs"]) for c in connections
    }
    out["cpu_ratio_median"] = {
        c: statistics.median(r[f"cpu ratio c={c}"] for r in out["runs"]) for c in connections
    }
    out["together_cpu_ratio_median"] = {
        c: statistics.median(r[f"together cpu ratio c={c}"] for r in out["runs"])
        for c in connections
    }
    rows = [
        [f"c={c}", statistics.median(r[f"accounting c={c}"] for r in out["runs"]),
         statistics.median(r[f"baseline c={c}"] for r in out["runs"]),
         [r[f"ratio c={c}"] for r in out["runs"]], out["ratio_median"][c],
         [r[f"cpu ratio c={c}"] for r in out["runs"]], out["cpu_ratio_median"][c],
         [r[f"together cpu ratio c={c}"] for r in out["runs"]],
         out["together_cpu_ratio_median"][c]]
        for c in connections
    ]  # fmt: skip
    print(f"\nstorage accounting vs {out['baseline']}, captures/s and the worker's CPU per capture"
          f" (median of {runs} run(s))")  # fmt: skip
    head = ["load", "accounting /s", "baseline /s", "ratio per run", "ratio (median)",
            "CPU ratio per run", "CPU ratio (median)", "together CPU ratio per run",
            "together (median)"]  # fmt: skip
    print_rows(head, rows)
    return out


def _rounds(servers: dict, run: int, rounds: int, seconds: float, c: int) -> dict:
    """Load a fresh bin on each server for ``seconds`` per round, in turns: the medians of
    captures/s and of the worker's CPU per capture (over the load alone, per stored capture:
    what the code spends, not the share of the cores it got), and of their ratios."""
    got = _compare(servers, run, rounds, seconds, c, at_once=False)
    rates = got["rates"]
    result = {f"{name} c={c}": round(statistics.median(v), 1) for name, v in rates.items()}
    ratios = [a / b for a, b in zip(rates["accounting"], rates["baseline"], strict=True)]
    result[f"ratio c={c}"] = round(statistics.median(ratios), 3)
    result[f"round ratios c={c}"] = [round(x, 3) for x in ratios]
    return result | _cpu_figures(got, c, "")


def _together(servers: dict, run: int, rounds: int, seconds: float, c: int) -> dict:
    """Load a fresh bin on both servers at once, ``rounds`` times: the workers' CPU per capture.

    Both loads run in the same seconds, so the machine's drift (a third within a minute here)
    moves both sides alike, and the ratio of CPU per capture is left to the code. Each worker
    gets about a core (wrk runs beside them), so captures/s themselves are not compared."""
    return _cpu_figures(_compare(servers, run, rounds, seconds, c, at_once=True), c, "together ")


def _compare(servers: dict, run: int, rounds: int, seconds: float, c: int, at_once: bool) -> dict:
    """Load a fresh bin on each server ``rounds`` times, in turns (the order turning each round)
    or at once; each load's captures/s and worker CPU per capture, by server."""
    workers = {name: worker_pids(gun.proc.pid)[0] for name, gun in servers.items()}
    rates: dict[str, list[float]] = {name: [] for name in servers}
    cpu_us: dict[str, list[float]] = {name: [] for name in servers}
    lost = 0
    for r in range(rounds):
        names = ["accounting", "baseline"] if (run + r) % 2 else ["baseline", "accounting"]
        loads = {}
        for name in names:
            gun = servers[name]
            loads[name] = TimedLoad(gun.url, gun.create_bin(), workers[name], c, seconds)
        if at_once:
            together(list(loads.values()))
        else:
            for load in loads.values():
                load.run()  # in this thread, one after the other
        for name, load in loads.items():
            rates[name].append(load.got["captures_per_s"])
            cpu_us[name].append(load.cpu_us_per_capture)
            lost += load.got["lost"]
    return {"rates": rates, "cpu_us": cpu_us, "lost": lost}


def _cpu_figures(got: dict, c: int, kind: str) -> dict:
    """The medians of each side's CPU per capture and of baseline over accounting per round
    (the capture rate the worker's core allows), keyed with ``kind``; and what was lost."""
    cpu_us = got["cpu_us"]
    ratios = [b / a for a, b in zip(cpu_us["accounting"], cpu_us["baseline"], strict=True)]
    result = {
        f"{name} {kind}cpu_us_per_capture c={c}": round(statistics.median(v), 1)
        for name, v in cpu_us.items()
    }
    result[f"{kind}cpu ratio c={c}"] = round(statistics.median(ratios), 3)
    result[f"round {kind}cpu ratios c={c}"] = [round(x, 3) for x in ratios]
    result[f"{kind}lost c={c}"] = got["lost"]
    return result


def _bin_rows(n: int, start: int = 0, seed: int = 16):
    """``n`` bins as rows of BIN_COLUMNS: sizes spread from empty to a full default budget."""
    rng = random.Random(seed + start)
    now = datetime.now(UTC).replace(tzinfo=None)
    for i in range(start, start + n):
        count = rng.randrange(0, 1000)
        yield (
            f"bench-bin-{i:07d}", f"bin {i}", "", now - timedelta(seconds=i),
            f"{rng.getrandbits(256):064x}", count, count, 1000, 604800, now + timedelta(days=7),
            None, None, False, 0, None, rng.randrange(0, 100 * 1024 * 1024), now,
            f"user{i % 97}@example.com" if i % 3 else None,
        )  # fmt: skip


def _insert_sqlite(path: str, n: int, start: int = 0) -> None:
    db = sqlite3.connect(path, timeout=30)
    try:
        marks = ", ".join("?" * len(BIN_COLUMNS))
        with db:
            db.executemany(
                f"INSERT INTO bins ({', '.join(BIN_COLUMNS)}) VALUES ({marks})",  # noqa: S608
                ((*r[:3], r[3].isoformat(" "), *r[4:9], r[9].isoformat(" "), *r[10:16],
                  r[16].isoformat(" "), r[17]) for r in _bin_rows(n, start)),
            )  # fmt: skip
    finally:
        db.close()


def _insert_postgres(url: str, n: int) -> None:
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY bins ({', '.join(BIN_COLUMNS)}) FROM STDIN") as copy:
            for row in _bin_rows(n):
                copy.write_row(row)
        cur.execute("ANALYZE bins")


def admin_listing(launch: Callable, harness, n: int, databases: list[str]) -> dict:
    """Time the admin listing's first page (and one half way down) over ``n`` bins."""
    out: dict = {"bins": n, "samples": SAMPLES, "databases": []}
    for kind in databases:
        with tempfile.TemporaryDirectory(prefix=f"hookscope-admin-{kind}-") as tmp:
            url = (
                harness.fresh_postgres_database()
                if kind == "postgres"
                else f"sqlite:///{tmp}/hookscope.db"
            )
            env = {"DATABASE_URL": url, "HOOKSCOPE_ADMIN_TOKEN": ADMIN_TOKEN}
            try:
                launch(Path(tmp), env).start().stop()  # the app makes its schema
                t0 = time.monotonic()
                if kind == "postgres":
                    _insert_postgres(url, n)
                else:
                    _insert_sqlite(url.removeprefix("sqlite:///"), n)
                filled = round(time.monotonic() - t0, 1)
                out["databases"].append({"database": kind, "fill_s": filled, **_time_listing(
                    launch(Path(tmp), env).start()
                )})  # fmt: skip
            except Exception as exc:  # noqa: BLE001 - reported, the next database goes on
                out["databases"].append({"database": kind, "error": f"{type(exc).__name__}: {exc}"})
            finally:
                if kind == "postgres":
                    harness.drop_postgres_database(url)
    rows = [
        [d["database"], d.get("first_page", {}).get("median_ms"),
         d.get("first_page", {}).get("p95_ms"), d.get("half_way", {}).get("median_ms"),
         d.get("half_way", {}).get("p95_ms"), d.get("error", "")]
        for d in out["databases"]
    ]  # fmt: skip
    print(f"\nadmin listing of {n:,} bins, GET /api/v1/admin/bins?limit=50 ({SAMPLES} samples)")
    head = ["database", "first p50 ms", "first p95 ms", "half way p50", "half way p95", ""]
    print_rows(head, rows)
    return out


def _time_listing(gun) -> dict:
    try:
        s = requests.Session()
        s.headers.update(bearer(ADMIN_TOKEN))
        url = gun.url + "/api/v1/admin/bins"

        def timed(params: dict) -> tuple[list[float], dict]:
            samples, body = [], {}
            for i in range(WARMUP + SAMPLES):
                t0 = time.perf_counter()
                r = s.get(url, params=params, timeout=30)
                elapsed = time.perf_counter() - t0
                r.raise_for_status()
                body = r.json()
                if i >= WARMUP:
                    samples.append(elapsed)
            return samples, body

        first, body = timed({"limit": 50})
        # A cursor half way down: walk pages of 500 to the middle.
        cursor, seen = body["next"], 50
        while seen < body["storage"]["bins"] // 2 and cursor:
            page = s.get(url, params={"limit": 500, "after": cursor}, timeout=60).json()
            cursor, seen = page["next"], seen + len(page["bins"])
        half, _ = timed({"limit": 50, "after": cursor})
        return {
            "first_page": timing(first),
            "half_way": timing(half),
            "storage": body["storage"],
            "log_problems": problems(gun.log_text())[:5],
        }
    finally:
        gun.stop()


def sizing(launch: Callable, steps: tuple[int, ...] = SIZING_STEPS) -> dict:
    """Worker RSS with N bins touched, and the database's bytes per byte counted."""
    out: dict = {"steps": [], "filled": {}}
    with tempfile.TemporaryDirectory(prefix="hookscope-sizing-") as tmp:
        path = f"{tmp}/hookscope.db"
        # Flood limits on, as in production (their counters are per bin), set too high to bite.
        env = {
            "DATABASE_URL": f"sqlite:///{path}",
            "HOOKSCOPE_RATE_LIMITS": "true",
            "HOOKSCOPE_RATE_LIMIT_PER_ADDRESS": "1000000/minute",
        }
        gun = launch(Path(tmp), env).start()
        try:
            pid = worker_pids(gun.proc.pid)[0]
            s = requests.Session()
            warm = gun.create_bin()
            for _ in range(20):
                s.post(warm["capture_url"], data=BODY, timeout=10)
            time.sleep(1)
            out["idle_rss_kib"] = memory_kib(pid)["VmRSS"]
            made = 0
            for target in steps:
                _insert_sqlite(path, target - made, start=made)
                for i in range(made, target):
                    r = s.post(f"{gun.url}/h/bench-bin-{i:07d}", data=BODY, timeout=10)
                    r.raise_for_status()
                made = target
                time.sleep(1)
                rss = memory_kib(pid)["VmRSS"]
                db_bytes, wal_bytes = _file_bytes(path)
                out["steps"].append({
                    "bins_touched": target, "rss_kib": rss,
                    "over_idle_kib": rss - out["idle_rss_kib"],
                    "db_bytes": db_bytes, "wal_bytes": wal_bytes,
                })  # fmt: skip
                print(f"  sizing: {target:,} bins touched: worker RSS {rss / 1024:.1f} MiB",
                      flush=True)  # fmt: skip
            out["log_problems"] = problems(gun.log_text())[:5]
        finally:
            gun.stop()
    out["filled"] = _filled(launch)
    rows = [
        [f"{x['bins_touched']:,}", round(x["rss_kib"] / 1024, 1),
         round(x["over_idle_kib"] / 1024, 1)]
        for x in out["steps"]
    ]  # fmt: skip
    print(f"\nworker RSS with bins touched (idle {out['idle_rss_kib'] / 1024:.1f} MiB)")
    print_rows(["bins touched", "RSS MiB", "over idle MiB"], rows)
    f = out["filled"]
    print(f"one bin of {FILLED_REQUESTS:,} captures of 1 KiB: {f['stored_bytes']:,} bytes counted,"
          f" database grew {f['db_growth_bytes']:,} bytes ({f['ratio']}x)")  # fmt: skip
    return out


def _filled(launch: Callable) -> dict:
    """Fill one bin with 1 KiB captures: the file's growth per byte counted against budgets."""
    with tempfile.TemporaryDirectory(prefix="hookscope-filled-") as tmp:
        path = f"{tmp}/hookscope.db"
        gun = launch(Path(tmp), {"DATABASE_URL": f"sqlite:///{path}"}).start()
        try:
            made = gun.create_bin()
            time.sleep(0.5)
            before, _ = _file_bytes(path)
            s = requests.Session()
            for _ in range(FILLED_REQUESTS):
                s.post(made["capture_url"], data=BODY, timeout=10).raise_for_status()
            time.sleep(1)  # the search index catches up
            shown = s.get(
                f"{gun.url}/api/v1/bins/{made['id']}", headers=bearer(made["read_key"]), timeout=10
            ).json()
        finally:
            gun.stop()  # the last connection to close checkpoints the WAL into the file
        after, wal = _file_bytes(path)
    growth = after - before
    return {
        "requests": shown["request_count"],
        "stored_bytes": shown["stored_bytes"],
        "db_growth_bytes": growth,
        "wal_bytes_left": wal,
        "ratio": round(growth / shown["stored_bytes"], 2),
    }


def _file_bytes(path: str) -> tuple[int, int]:
    """The sizes of the SQLite file and of its WAL."""
    return tuple(  # type: ignore[return-value]
        os.path.getsize(p) if os.path.exists(p) else 0 for p in (path, path + "-wal")
    )
