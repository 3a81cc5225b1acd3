"""Scale-out: ingest throughput on SQLite (1 worker) and on PostgreSQL + Redis (1 and 2 workers).

Each configuration gets a fresh server (and a fresh PostgreSQL database) per run; the order of the
configurations rotates between runs so drift on a shared machine favours none. Every run checks that
each 2xx answer was stored, as the ingest scenario does.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import busy_pct, cpu_seconds, machine_busy, print_rows, problems, worker_pids
from ingest import ingest_bins

CONNECTIONS = 32
CONFIGS = {
    "sqlite, 1 worker": {"workers": 1, "postgres": False},
    "postgres+redis, 1 worker": {"workers": 1, "postgres": True},
    "postgres+redis, 2 workers": {"workers": 2, "postgres": True},
}
TARGET_RATIO = 1.6


def redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=2).ping())
    except redis.RedisError:
        return False


class PrivateRedis:
    """A throwaway redis-server on a free port, for when the shared one does not answer."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> PrivateRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("no Redis answers and redis-server is not installed")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not redis_answers(self.url):
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.1)
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def run(
    launch: Callable,
    harness,
    runs: int,
    seconds: float,
    redis_url: str,
    bins: int = 1,
    connections: int = CONNECTIONS,
) -> dict:
    """``bins``: 1 is one hot bin (every batch of every process locks the same bin row); more
    spread the same load over that many bins in turn (each batch then locks all of them)."""
    out: dict = {"connections": connections, "seconds": seconds, "bins": bins, "runs": []}
    private = None
    if not redis_answers(redis_url):
        private = PrivateRedis(harness.free_port()).__enter__()
        redis_url = private.url
    out["redis_url"] = redis_url
    try:
        names = list(CONFIGS)
        for run_no in range(runs):
            order = names[run_no % len(names) :] + names[: run_no % len(names)]
            for name in order:
                r = one(launch, harness, name, CONFIGS[name], seconds, redis_url, bins, connections)
                r["run"] = run_no + 1
                out["runs"].append(r)
                print(f"  scaleout run {run_no + 1} {name}: {r.get('captures_per_s')}/s "
                      f"lost {r.get('lost')} workers cpu {r.get('workers_cpu_pct')}% "
                      f"(each {r.get('worker_cpu_pct_each')}) "
                      f"machine {r.get('machine_busy_pct')}% {r.get('error', '')}",
                      flush=True)  # fmt: skip
    finally:
        if private:
            private.__exit__()
    out["summary"] = summarise(out["runs"])
    print_table(out, runs)
    return out


def one(
    launch: Callable,
    harness,
    name: str,
    cfg: dict,
    seconds: float,
    redis_url: str,
    bins: int,
    connections: int,
) -> dict:
    env = {"HOOKSCOPE_WORKERS": str(cfg["workers"])}
    db_url = None
    if cfg["postgres"]:
        db_url = harness.fresh_postgres_database()
        env.update(DATABASE_URL=db_url, REDIS_URL=redis_url)
    result: dict = {"config": name}
    try:
        with tempfile.TemporaryDirectory(prefix="hookscope-scale-") as tmp:
            gun = launch(Path(tmp), env).start()
            try:
                pids = worker_pids(gun.proc.pid)
                result["worker_pids"] = len(pids)
                if len(pids) != cfg["workers"]:
                    raise RuntimeError(f"{len(pids)} workers running, not {cfg['workers']}")
                made = [gun.create_bin() for _ in range(bins)]
                targets = [(created["id"], created["read_key"]) for created in made]
                cpu0, busy0, t0 = list(map(cpu_seconds, pids)), machine_busy(), time.monotonic()
                r = ingest_bins(gun.url, targets, connections, seconds, True)
                elapsed = time.monotonic() - t0
                # Each worker's share shows how the kernel spread wrk's keep-alive connections.
                each = [
                    round(100 * (cpu_seconds(pid) - before) / elapsed, 1)
                    for pid, before in zip(pids, cpu0, strict=True)
                ]
                result.update(
                    {k: v for k, v in r.items() if k != "raw"},
                    workers_cpu_pct=round(sum(each), 1),
                    worker_cpu_pct_each=each,
                    machine_busy_pct=busy_pct(busy0, machine_busy()),
                )
            finally:
                gun.stop()
                found = problems(gun.log_text())
                result["log_problem_count"], result["log_problems"] = len(found), found[:20]
    except Exception as exc:  # noqa: BLE001 - one broken configuration does not stop the rest
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        if db_url:
            harness.drop_postgres_database(db_url)
    return result


def summarise(runs: list[dict]) -> dict:
    summary = {}
    for name in CONFIGS:
        mine = [r for r in runs if r["config"] == name and "error" not in r]

        def med(key: str, mine: list[dict] = mine) -> float | None:
            return statistics.median(r[key] for r in mine) if mine else None

        summary[name] = {
            "runs": len(mine),
            "captures_per_s": med("captures_per_s"),
            "captures_per_s_runs": [r["captures_per_s"] for r in mine],
            "p50_ms": med("p50_ms"),
            "p99_ms": med("p99_ms"),
            "workers_cpu_pct": med("workers_cpu_pct"),
            "machine_busy_pct": med("machine_busy_pct"),
            "lost": sum(r["lost"] for r in mine),
            "non_2xx": sum(r["non_2xx"] for r in mine),
            "accounting_ok": all(r["accounting_ok"] for r in mine),
            "log_problems": sum(r.get("log_problem_count", 0) for r in runs if r["config"] == name),
        }
    one_w = summary["postgres+redis, 1 worker"]["captures_per_s"]
    two_w = summary["postgres+redis, 2 workers"]["captures_per_s"]
    summary["ratio_2_over_1"] = round(two_w / one_w, 2) if one_w and two_w else None
    return summary


def print_table(out: dict, runs: int) -> None:
    s = out["summary"]
    print(f"\nscale-out: wrk {out['connections']} connections to {out['bins']} bin(s), "
          f"{out['seconds']:g} s; medians of {runs} run(s); Redis {out['redis_url']}")  # fmt: skip
    head = ["configuration", "captures/s", "runs", "p50 ms", "p99 ms", "workers CPU %",
            "machine busy %", "lost", "non-2xx", "stored==2xx", "log problems"]  # fmt: skip
    table = [
        [name, v["captures_per_s"], v["captures_per_s_runs"], v["p50_ms"], v["p99_ms"],
         v["workers_cpu_pct"], v["machine_busy_pct"], v["lost"], v["non_2xx"],
         "ok" if v["accounting_ok"] else "FAILED", v["log_problems"]]
        for name, v in s.items() if name in CONFIGS
    ]  # fmt: skip
    print_rows(head, table)
    ratio = s["ratio_2_over_1"]
    verdict = "-" if ratio is None else ("ok" if ratio >= TARGET_RATIO else "MISSED")
    print(f"postgres+redis 2 workers / 1 worker: {ratio}x (target >= {TARGET_RATIO}x: {verdict})")
    for r in out["runs"]:
        if "error" in r:
            print(f"  run {r['run']} {r['config']}: {r['error']}")
