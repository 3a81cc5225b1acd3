"""Scale-out: ingest throughput on SQLite (1 worker) and on PostgreSQL + Redis (1 and 2 workers).

Each configuration gets a fresh server (and a fresh PostgreSQL database) per run; the order of the
configurations rotates between runs so drift on a shared machine favours none. Every run checks that
each 2xx answer was stored, as the ingest scenario does.

Two readings say what the 2-worker figure could be on this machine:

- a control: the same PostgreSQL + Redis servers, 1 and 2 workers, answering GETs of an unknown
  page (Flask's 404, no database). It shows what this machine and load generator give a second
  worker when the worker is all the work;
- the CPU each kind of process (workers, PostgreSQL, wrk, Redis, the kernel's threads) spends per
  capture, and from it the "ceiling": the captures/s two workers would reach with the whole
  machine busy at the CPU per capture they use now (captures/s / machine busy share).
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import (
    busy_pct,
    cpu_by_process,
    cpu_ms_per_item,
    cpu_seconds,
    machine_busy,
    print_rows,
    problems,
    worker_pids,
)
from ingest import WRK, ingest_bins

CONNECTIONS = 32
CONFIGS = {
    "sqlite, 1 worker": {"workers": 1, "postgres": False},
    "postgres+redis, 1 worker": {"workers": 1, "postgres": True},
    "postgres+redis, 2 workers": {"workers": 2, "postgres": True},
    "control: GET 404, 1 worker": {"workers": 1, "postgres": True, "control": True},
    "control: GET 404, 2 workers": {"workers": 2, "postgres": True, "control": True},
}
# Not a route: Flask answers 404 without touching the database.
CONTROL_PATH = "/bench-control-no-such-page"
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
                rate = r.get(rate_key(CONFIGS[name]))
                print(f"  scaleout run {run_no + 1} {name}: {rate}/s "
                      f"lost {r.get('lost', '-')} workers cpu {r.get('workers_cpu_pct')}% "
                      f"(each {r.get('worker_cpu_pct_each')}) "
                      f"machine {r.get('machine_busy_pct')}% {r.get('error', '')}",
                      flush=True)  # fmt: skip
    finally:
        if private:
            private.__exit__()
    out["summary"] = summarise(out["runs"])
    print_table(out, runs)
    return out


def rate_key(cfg: dict) -> str:
    """What a configuration's run counts per second: captures, or the control's requests."""
    return "requests_per_s" if cfg.get("control") else "captures_per_s"


def get_load(
    url: str, connections: int, seconds: float, loaded: Callable[[], object]
) -> dict[str, float | int]:
    """GET ``url`` with wrk: every answer must be an error status (the 404 this path gives; wrk
    counts no finer), and no connection may fail or time out."""
    cmd = [WRK, "-t2", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "5s", url]
    text = subprocess.run(
        cmd, capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    loaded()
    done = re.search(r"(\d+) requests in ([\d.]+)s", text)
    total, elapsed = int(done[1]), float(done[2])
    not_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    if not_2xx is None or int(not_2xx[1]) != total or errors:
        raise RuntimeError(f"control: a 2xx/3xx answer or a socket error:\n{text}")
    return {"requests": total, "requests_per_s": round(total / elapsed, 1)}


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
                names = {pid: "gunicorn workers" for pid in pids}
                targets = None
                if not cfg.get("control"):
                    made = [gun.create_bin() for _ in range(bins)]
                    targets = [(created["id"], created["read_key"]) for created in made]
                by_process0 = cpu_by_process(names)
                cpu0, busy0, t0 = list(map(cpu_seconds, pids)), machine_busy(), time.monotonic()
                ends: dict = {}

                def loaded() -> None:  # the load's end, before the accounting's requests
                    ends.update(
                        elapsed=time.monotonic() - t0,
                        cpu=list(map(cpu_seconds, pids)),
                        busy=machine_busy(),
                        by_process=cpu_by_process(names),
                    )

                if targets is None:
                    r = get_load(gun.url + CONTROL_PATH, connections, seconds, loaded)
                    items = r["requests"]
                else:
                    r = ingest_bins(gun.url, targets, connections, seconds, True, loaded)
                    items = r["ok_2xx"]
                # Each worker's share shows how the kernel spread wrk's keep-alive connections.
                each = [
                    round(100 * (after - before) / ends["elapsed"], 1)
                    for after, before in zip(ends["cpu"], cpu0, strict=True)
                ]
                result.update(
                    {k: v for k, v in r.items() if k != "raw"},
                    workers_cpu_pct=round(sum(each), 1),
                    worker_cpu_pct_each=each,
                    machine_busy_pct=busy_pct(busy0, ends["busy"]),
                    cpu_ms_per_item=cpu_ms_per_item(by_process0, ends["by_process"], items),
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
    summary: dict = {}
    for name, cfg in CONFIGS.items():
        mine = [r for r in runs if r["config"] == name and "error" not in r]

        def med(key: str, mine: list[dict] = mine) -> float | None:
            return statistics.median(r[key] for r in mine) if mine else None

        kinds = {kind for r in mine for kind in r["cpu_ms_per_item"]}
        per_item = {
            kind: statistics.median(r["cpu_ms_per_item"].get(kind, 0.0) for r in mine)
            for kind in kinds
        }
        rate = rate_key(cfg)
        summary[name] = {
            "runs": len(mine),
            rate: med(rate),
            f"{rate}_runs": [r[rate] for r in mine],
            "workers_cpu_pct": med("workers_cpu_pct"),
            "machine_busy_pct": med("machine_busy_pct"),
            # CPU ms per capture (per request for the control), median of each kind of process.
            "cpu_ms_per_item": dict(sorted(per_item.items(), key=lambda kv: -kv[1])),
            "log_problems": sum(r.get("log_problem_count", 0) for r in runs if r["config"] == name),
        }
        if mine:
            # At the CPU per capture of this configuration, what a fully busy machine would give.
            summary[name]["full_machine_per_s"] = statistics.median(
                r[rate] * 100 / r["machine_busy_pct"] for r in mine if r["machine_busy_pct"]
            )
        if not cfg.get("control"):
            summary[name].update(
                p50_ms=med("p50_ms"),
                p99_ms=med("p99_ms"),
                lost=sum(r["lost"] for r in mine),
                non_2xx=sum(r["non_2xx"] for r in mine),
                accounting_ok=all(r["accounting_ok"] for r in mine),
            )

    def ratio(two: str, one: str, key: str) -> float | None:
        a, b = summary[one].get(key), summary[two].get(key)
        return round(b / a, 2) if a and b else None

    summary["ratio_2_over_1"] = ratio(
        "postgres+redis, 2 workers", "postgres+redis, 1 worker", "captures_per_s"
    )
    summary["control_ratio_2_over_1"] = ratio(
        "control: GET 404, 2 workers", "control: GET 404, 1 worker", "requests_per_s"
    )
    full = summary["postgres+redis, 2 workers"].get("full_machine_per_s")
    one_w = summary["postgres+redis, 1 worker"].get("captures_per_s")
    summary["ceiling_ratio_2_over_1"] = round(full / one_w, 2) if full and one_w else None
    return summary


def print_table(out: dict, runs: int) -> None:
    s = out["summary"]
    print(f"\nscale-out: wrk {out['connections']} connections to {out['bins']} bin(s), "
          f"{out['seconds']:g} s; medians of {runs} run(s); Redis {out['redis_url']}")  # fmt: skip
    ingest = [name for name, cfg in CONFIGS.items() if not cfg.get("control")]
    controls = [name for name, cfg in CONFIGS.items() if cfg.get("control")]
    head = ["configuration", "captures/s", "runs", "p50 ms", "p99 ms", "workers CPU %",
            "machine busy %", "lost", "non-2xx", "stored==2xx", "log problems"]  # fmt: skip
    table = [
        [name, v["captures_per_s"], v["captures_per_s_runs"], v["p50_ms"], v["p99_ms"],
         v["workers_cpu_pct"], v["machine_busy_pct"], v["lost"], v["non_2xx"],
         "ok" if v["accounting_ok"] else "FAILED", v["log_problems"]]
        for name in ingest for v in [s[name]]
    ]  # fmt: skip
    print_rows(head, table)
    print()
    head = ["control (no database)", "requests/s", "runs", "workers CPU %", "machine busy %",
            "log problems"]  # fmt: skip
    table = [
        [name, v["requests_per_s"], v["requests_per_s_runs"], v["workers_cpu_pct"],
         v["machine_busy_pct"], v["log_problems"]]
        for name in controls for v in [s[name]]
    ]  # fmt: skip
    print_rows(head, table)
    print("\nCPU ms per capture (per request for the controls), by kind of process:")
    # Kinds that used at least 5 us per item somewhere; the rest go into "all" only.
    kinds: list[str] = []
    for name in CONFIGS:
        for kind, ms in s[name]["cpu_ms_per_item"].items():
            if ms >= 0.005 and kind not in kinds:
                kinds.append(kind)
    head = ["configuration", *kinds, "all", "full machine /s"]
    table = [
        [name, *(round(v["cpu_ms_per_item"].get(k, 0.0), 3) for k in kinds),
         round(sum(v["cpu_ms_per_item"].values()), 3), _round(v.get("full_machine_per_s"))]
        for name in CONFIGS for v in [s[name]]
    ]  # fmt: skip
    print_rows(head, table)
    ratio = s["ratio_2_over_1"]
    verdict = "-" if ratio is None else ("ok" if ratio >= TARGET_RATIO else "MISSED")
    print(f"postgres+redis 2 workers / 1 worker: {ratio}x (target >= {TARGET_RATIO}x: {verdict})")
    print(f"  control, 2 workers / 1 worker: {s['control_ratio_2_over_1']}x")
    print(f"  2 workers with the machine 100% busy at their CPU per capture, / 1 worker: "
          f"{s['ceiling_ratio_2_over_1']}x")  # fmt: skip
    for r in out["runs"]:
        if "error" in r:
            print(f"  run {r['run']} {r['config']}: {r['error']}")


def _round(x: float | None) -> float | None:
    return None if x is None else round(x)
