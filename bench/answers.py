"""Answers: what a bin's response and rules cost a capture, and what a delayed answer costs others.

**Rules** (``ratio``, ``ratio_templated``): one fresh server takes the same wrk load into a default
bin and into two bins whose answer the rules choose: three rules tried in order on every capture
(a method, a header, and a JSON path into the body, none of which match ``post.lua``'s body)
before the bin's own response, a ``201`` with a header and a fixed body, or the same with a
template body (``created {{ seq }}``, rendered for every capture). The load is cut into rounds
(``--seconds`` in loads of ``common.ROUND_SECONDS`` per kind, a fresh bin each time, the order
turning), and a run's figure is the median over its rounds of captures/s of each kind over the
default's in the same round: loads seconds apart, where the machine's drift matters least.

**Rules, loaded together** (``rules_together``): two servers of the same code take the load at
once, a default bin on one and the rules bin on the other, swapping each round; the figure is
the ratio of the workers' CPU per capture (default over rules), which the machine's drift moves
on both sides alike because both loads share the same seconds.

**Delay** (``held``): on one fresh server, wrk loads a default bin twice: once alone, and once
while 200 requests to another bin wait for its 10 s answer delay (sent first, each on its own
connection, the load starting once all 200 are stored). The order alternates between runs. The
figures are the default bin's p50/p99 and captures/s in each case, and what the held requests
were answered, and after how long.
"""

from __future__ import annotations

import os
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests
from common import print_rows, rounds_in, worker_pids
from ingest import TimedLoad, ingest_bins, together

CONNECTIONS = 32
HELD = 200
DELAY_MS = 10_000

RULES = {
    "response": {
        "status": 201,
        "headers": [["X-Hook", "ok"]],
        "body": "created",
        "content_type": "text/plain",
    },
    "rules": [
        {"name": "deletes", "when": [{"method": "DELETE"}], "response": {"status": 405}},
        {
            "name": "pushes",
            "when": [{"header": "X-GitHub-Event", "value": "push"}],
            "response": {"status": 202},
        },
        {
            "name": "failed payments",
            "when": [{"json": "data.object.status", "equals": "failed"}],
            "response": {"status": 500, "body": "failed"},
        },
    ],
}


def _patch(base: str, made: dict, settings: dict) -> None:
    r = requests.patch(
        f"{base}/api/v1/bins/{made['id']}",
        json=settings,
        headers={"Authorization": f"Bearer {made['read_key']}"},
        timeout=10,
    )
    r.raise_for_status()


def _load(base: str, made: dict, seconds: float) -> dict:
    load = ingest_bins(base, [(made["id"], made["read_key"])], CONNECTIONS, seconds, page=False)
    return {k: load[k] for k in ("captures_per_s", "p50_ms", "p99_ms", "lost")}


TEMPLATED = {**RULES, "response": {**RULES["response"], "body": "created {{ seq }}"}}


KINDS = {"default": None, "rules": RULES, "templated": TEMPLATED}


def rules_run(launch: Callable, run: int, seconds: float) -> dict:
    """One server, a default bin and two rule-answered bins, the same short loads into each."""
    rounds = rounds_in(seconds)
    with tempfile.TemporaryDirectory(prefix="hookscope-bench-answers-") as tmp:
        gun = launch(Path(tmp), {}).start()
        try:
            for name in ("rules", "templated"):  # each kind answers as set, in a bin of its own
                made = gun.create_bin()
                _patch(gun.url, made, KINDS[name])
                _check_answer(gun.url, made, name)
            names = list(KINDS)
            loads: dict[str, list[dict]] = {name: [] for name in names}
            ratios: dict[str, list[float]] = {"rules": [], "templated": []}
            for r in range(rounds):
                turn = (run - 1 + r) % len(names)
                got = {}
                for name in names[turn:] + names[:turn]:
                    made = gun.create_bin()
                    if KINDS[name] is not None:
                        _patch(gun.url, made, KINDS[name])
                    got[name] = _load(gun.url, made, seconds / rounds)
                    loads[name].append(got[name])
                for name in ratios:
                    ratios[name].append(
                        got[name]["captures_per_s"] / got["default"]["captures_per_s"]
                    )
            out: dict = {"run": run, "rounds": rounds}
            for name in names:
                out[name] = {
                    "captures_per_s": round(
                        statistics.median(x["captures_per_s"] for x in loads[name]), 1
                    ),
                    "p99_ms": statistics.median(x["p99_ms"] for x in loads[name]),
                    "lost": sum(x["lost"] for x in loads[name]),
                }
            out["round_ratios"] = {k: [round(x, 3) for x in v] for k, v in ratios.items()}
            out["ratio"] = round(statistics.median(ratios["rules"]), 3)
            out["ratio_templated"] = round(statistics.median(ratios["templated"]), 3)
            out["loadavg"] = list(os.getloadavg())
            return out
        finally:
            gun.stop()


def rules_together_run(launch: Callable, run: int, seconds: float) -> dict:
    """Two servers of the same code, loaded at once, a default bin on one and a rules bin on the
    other (which takes which turns each round): the workers' CPU per capture.

    Loads in the same seconds see the same machine, so its drift (a third within a minute
    here) moves both sides alike; captures/s is not compared (each worker gets about a core,
    wrk runs beside them), the CPU each capture took is."""
    rounds = rounds_in(seconds)
    with (
        tempfile.TemporaryDirectory(prefix="hookscope-bench-answers-a-") as tmp_a,
        tempfile.TemporaryDirectory(prefix="hookscope-bench-answers-b-") as tmp_b,
    ):
        servers = []
        try:
            for tmp in (tmp_a, tmp_b):
                servers.append(launch(Path(tmp), {}).start())
            workers = [worker_pids(gun.proc.pid)[0] for gun in servers]
            cpu_us: dict[str, list[float]] = {"default": [], "rules": []}
            ratios, lost = [], 0
            for r in range(rounds):
                kinds = ("default", "rules") if (run + r) % 2 else ("rules", "default")
                loads = {}
                for kind, gun, worker in zip(kinds, servers, workers, strict=True):
                    made = gun.create_bin()
                    if KINDS[kind] is not None:
                        _patch(gun.url, made, KINDS[kind])
                    loads[kind] = TimedLoad(gun.url, made, worker, CONNECTIONS, seconds / rounds)
                together(list(loads.values()))
                for kind, each in loads.items():
                    cpu_us[kind].append(each.cpu_us_per_capture)
                    lost += each.got["lost"]
                ratios.append(cpu_us["default"][-1] / cpu_us["rules"][-1])
            return {
                "run": run,
                "rounds": rounds,
                "cpu_us_per_capture": {
                    k: round(statistics.median(v), 1) for k, v in cpu_us.items()
                },
                "round_ratios": [round(x, 3) for x in ratios],
                "ratio": round(statistics.median(ratios), 3),
                "lost": lost,
            }
        finally:
            for gun in servers:
                gun.stop()


def _check_answer(base: str, made: dict, name: str) -> None:
    """The bin answers as its settings say."""
    says = "created" if name == "rules" else "created 1"
    answer = requests.post(f"{base}/h/{made['id']}", json={"a": 1}, timeout=10)
    assert answer.status_code == 201 and answer.text == says, answer.text


def _hold(url: str, count: int) -> tuple[list[socket.socket], float]:
    """Send ``count`` captures to ``url`` (http://host:port/path), each on its own connection,
    without reading the answers; return the sockets and when the last was sent."""
    host_port, _, path = url.removeprefix("http://").partition("/")
    host, _, port = host_port.partition(":")
    body = b'{"held": true}'
    request = (
        f"POST /{path} HTTP/1.1\r\nHost: {host_port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    socks = []
    for _ in range(count):
        s = socket.create_connection((host, int(port)), timeout=60)
        s.sendall(request)
        socks.append(s)
    return socks, time.monotonic()


def _answers(socks: list[socket.socket], sent: float) -> dict:
    """Read each held request's status line; say what they were answered and when."""
    statuses: dict[str, int] = {}
    waited: list[float] = []
    lock = threading.Lock()

    def read(s: socket.socket) -> None:
        try:
            line = s.makefile("rb").readline().decode("latin-1").split(" ")
            status = line[1] if len(line) > 1 else "none"
        except OSError as err:
            status = type(err).__name__
        with lock:
            statuses[status] = statuses.get(status, 0) + 1
            waited.append(time.monotonic() - sent)
        s.close()

    threads = [threading.Thread(target=read, args=(s,)) for s in socks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {
        "statuses": statuses,
        "answered_after_s_min": round(min(waited), 2),
        "answered_after_s_max": round(max(waited), 2),
    }


def _last_seq(base: str, made: dict) -> int:
    r = requests.get(
        f"{base}/api/v1/bins/{made['id']}",
        headers={"Authorization": f"Bearer {made['read_key']}"},
        timeout=10,
    )
    return r.json()["last_seq"]


def delay_run(launch: Callable, run: int, seconds: float) -> dict:
    """One server: a default bin loaded alone, and while 200 delayed answers are held."""
    seconds = min(seconds, DELAY_MS / 1000 - 2)  # the load ends while they are still held
    with tempfile.TemporaryDirectory(prefix="hookscope-bench-delay-") as tmp:
        gun = launch(Path(tmp), {}).start()
        try:
            plain, slow = gun.create_bin(), gun.create_bin()
            _patch(gun.url, slow, {"response": {"status": 202, "delay_ms": DELAY_MS}})
            out: dict = {"run": run}
            for name in ["alone", "held"] if run % 2 else ["held", "alone"]:
                if name == "alone":
                    out[name] = _load(gun.url, plain, seconds)
                    continue
                socks, sent = _hold(f"{gun.url}/h/{slow['id']}", HELD)
                deadline = time.monotonic() + 30
                while _last_seq(gun.url, slow) < HELD and time.monotonic() < deadline:
                    time.sleep(0.05)
                stored_before_load = time.monotonic() - sent
                out[name] = _load(gun.url, plain, seconds)
                out[name]["held_stored_after_s"] = round(stored_before_load, 2)
                out["held_answers"] = _answers(socks, sent)
            out["loadavg"] = list(os.getloadavg())
            return out
        finally:
            gun.stop()


def run(launch: Callable, runs: int, seconds: float | None) -> dict:
    """Run both comparisons ``runs`` times and print a table of medians."""
    seconds = seconds or 10
    ruled, paired, delayed = [], [], []
    for n in range(1, runs + 1):
        r = rules_run(launch, n, seconds)
        ruled.append(r)
        print(f"  rules run {n}: default {r['default']['captures_per_s']}/s, rules "
              f"{r['rules']['captures_per_s']}/s (ratio {r['ratio']}), templated "
              f"{r['templated']['captures_per_s']}/s (ratio {r['ratio_templated']}), lost "
              f"{r['default']['lost']}/{r['rules']['lost']}/{r['templated']['lost']}; "
              f"load avg {r['loadavg'][0]:.2f}", flush=True)  # fmt: skip
        t = rules_together_run(launch, n, seconds)
        paired.append(t)
        print(f"  rules run {n}, loaded together: CPU us/capture default "
              f"{t['cpu_us_per_capture']['default']}, rules {t['cpu_us_per_capture']['rules']}, "
              f"ratio {t['ratio']} (rounds {t['round_ratios']}), lost {t['lost']}",
              flush=True)  # fmt: skip
        d = delay_run(launch, n, seconds)
        delayed.append(d)
        print(f"  delay run {n}: alone p50/p99 {d['alone']['p50_ms']}/{d['alone']['p99_ms']} ms "
              f"{d['alone']['captures_per_s']}/s; with {HELD} held "
              f"{d['held']['p50_ms']}/{d['held']['p99_ms']} ms {d['held']['captures_per_s']}/s; "
              f"held answered {d['held_answers']}", flush=True)  # fmt: skip

    def med(rows: list[dict], get: Callable[[dict], float]) -> float:
        return statistics.median(get(r) for r in rows)

    print_rows(
        ["metric", f"median of {runs}"],
        [
            ["captures/s, default bin", med(ruled, lambda r: r["default"]["captures_per_s"])],
            ["captures/s, 3 rules + 201", med(ruled, lambda r: r["rules"]["captures_per_s"])],
            ["captures/s, 3 rules + templated 201",
             med(ruled, lambda r: r["templated"]["captures_per_s"])],
            ["ratio rules / default (same run)", med(ruled, lambda r: r["ratio"])],
            ["ratio templated / default (same run)", med(ruled, lambda r: r["ratio_templated"])],
            ["CPU ratio default / rules, loaded together", med(paired, lambda r: r["ratio"])],
            ["p99 ms other bin, alone", med(delayed, lambda r: r["alone"]["p99_ms"])],
            [f"p99 ms other bin, {HELD} held 10 s", med(delayed, lambda r: r["held"]["p99_ms"])],
            ["p50 ms other bin, alone / held",
             f"{med(delayed, lambda r: r['alone']['p50_ms'])} / "
             f"{med(delayed, lambda r: r['held']['p50_ms'])}"],
            ["captures/s other bin, alone / held",
             f"{med(delayed, lambda r: r['alone']['captures_per_s'])} / "
             f"{med(delayed, lambda r: r['held']['captures_per_s'])}"],
        ],
    )  # fmt: skip
    return {"rules": ruled, "rules_together": paired, "delay": delayed}
