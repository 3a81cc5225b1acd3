"""A bin with a million stored requests: how fast its list, deep pages, detail, raw body and
full-text search open.

The app creates the schema and the bin (a real gunicorn start and a real API call, so migrations and
the bin row are the app's own); the requests are then written straight into the database
(sqlite3 executemany, or psycopg COPY) by ``big_rows``, and the app is started again over the
result and timed through its API.
"""

from __future__ import annotations

import random
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests
from big_rows import PAYLOAD_COLUMNS, REQUEST_COLUMNS, check_columns, rows
from common import print_rows, problems, timing
from ingest import bearer

SAMPLES = 20
WARMUP = 2
DEPTH = 500_000
WALK_PAGES = 200
TARGET_MS = {"list, first page": 50, "list at depth": 50, "search": 300}
# Full-text searches, by kind: (label, q). The rare word is a different request's number each
# time (every template carries the seq); the others repeat. The last is the hard case for
# PostgreSQL's GIN (no positions in the index): two common words that never stand together. On
# PostgreSQL a search call may stop early (searched_down_to; app/store/search/postgres.py): each row
# times one call, the first answer, and says how many of its answers stopped early.
SEARCHES = [
    ("common word", "lorem"),
    ("phrase", '"checkout finished"'),
    ("two words", "stripe succeeded"),
    ("prefix", "octo*"),
    ("phrase, 1 in 8 requests", '"crash on save"'),
    ("no match", "nonexistentword"),
    ("phrase of common words, no match", '"main heads"'),
]
# The list query as app/bins.py page() builds it (columns of CapturedRequest, limit + 1).
LIST_SQL = (
    "SELECT {cols} FROM requests WHERE requests.bin_id = {p} AND requests.seq < {p} "
    "ORDER BY requests.seq DESC LIMIT 51"
)
# Sane stand-in for "seq < no limit" in the first page's plan.
FIRST_BEFORE = 2**62
# A search whose first answer stops early is also timed to its end: next_before followed until
# it is null, this many times.
FOLLOWED = ("phrase of common words, no match", '"main heads"')
FOLLOW_SAMPLES = 3


def run(launch: Callable, harness, n: int, databases: list[str]) -> dict:
    """Build and time one big bin per database; print a table; return every number."""
    out: dict = {"rows": n, "samples": SAMPLES, "databases": []}
    for kind in databases:
        with tempfile.TemporaryDirectory(prefix=f"hookscope-big-{kind}-") as tmp:
            try:
                out["databases"].append(one_database(kind, Path(tmp), launch, harness, n))
            except Exception as exc:  # noqa: BLE001 - report it and go on with the next database
                out["databases"].append({"database": kind, "error": f"{type(exc).__name__}: {exc}"})
                print(f"  big {kind} FAILED: {type(exc).__name__}: {exc}", flush=True)
    print_table(out)
    return out


def one_database(kind: str, workdir: Path, launch: Callable, harness, n: int) -> dict:
    url = harness.fresh_postgres_database() if kind == "postgres" else f"sqlite:///{workdir}/big.db"
    env = {
        "DATABASE_URL": url,
        "HOOKSCOPE_MAX_REQUESTS_CEILING": str(10 * n),
        "HOOKSCOPE_DEFAULT_MAX_REQUESTS": str(10 * n),
    }
    result: dict = {"database": kind, "rows": n}
    try:
        gun = launch(workdir, env).start()  # runs the migrations
        try:
            created = gun.create_bin()
        finally:
            gun.stop()
        bin_id, key = created["id"], created["read_key"]
        host = f"127.0.0.1:{gun.port}"
        print(f"  big {kind}: generating {n:,} requests ...", flush=True)
        t0 = time.monotonic()
        write = write_sqlite if kind == "sqlite" else write_postgres
        result.update(write(url, bin_id, n, host))
        result["generate_s"] = round(time.monotonic() - t0, 1)
        print(f"  big {kind}: generated in {result['generate_s']} s, "
              f"{result['db_mib']} MiB", flush=True)  # fmt: skip
        gun = launch(workdir, env)
        t0 = time.monotonic()
        gun.start(timeout=120)
        result["start_s"] = round(time.monotonic() - t0, 2)
        try:
            if kind == "sqlite":
                # The rows went in behind the app's back, so all of them wait in SQLite's search
                # queue (migration 0004), which a running app indexes as it stores. The first
                # search indexes the queue (in the writer's thread); it is timed apart, as a bulk
                # import would be, and the bin is then as the app would have left it.
                t0 = time.monotonic()
                requests.get(
                    f"{gun.url}/api/v1/bins/{bin_id}/requests",
                    params={"q": "lorem"},
                    headers=bearer(key),
                    timeout=900,
                ).raise_for_status()
                result["index_queue_s"] = round(time.monotonic() - t0, 1)
                print(f"  big sqlite: queue indexed in {result['index_queue_s']} s", flush=True)
            result["timings"] = measure(gun.url, bin_id, key, n)
            # The app must go on writing into what was generated (ids, serial, counters).
            r = requests.post(f"{gun.url}/h/{bin_id}/after", json={"after": "bulk"}, timeout=30)
            result["capture_after"] = [r.status_code, r.headers.get("X-Hookscope-Seq")]
        finally:
            gun.stop()
            found = problems(gun.log_text())
            result["log_problem_count"], result["log_problems"] = len(found), found[:20]
        if kind == "sqlite":
            result["types_app_row"] = _sqlite_types(url, bin_id, n + 1)
    finally:
        if kind == "postgres":
            harness.drop_postgres_database(url)
    return result


def _sqlite_columns(db: sqlite3.Connection, table: str) -> dict[str, bool]:
    info = db.execute(f"PRAGMA table_info({table})").fetchall()  # noqa: S608 - fixed names
    # (cid, name, type, notnull, default, pk): optional when nullable or defaulted.
    return {r[1]: (not r[3]) or r[4] is not None for r in info}


def write_sqlite(url: str, bin_id: str, n: int, host: str) -> dict:
    path = url.removeprefix("sqlite:///")
    db = sqlite3.connect(path, isolation_level=None)
    notes = check_columns("requests", _sqlite_columns(db, "requests"), REQUEST_COLUMNS)
    notes += check_columns("payloads", _sqlite_columns(db, "payloads"), PAYLOAD_COLUMNS)
    if db.execute("SELECT count(*) FROM requests").fetchone()[0]:
        raise RuntimeError("the new database already holds requests")
    # A benchmark file: nothing to lose if the machine crashes mid-way.
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -200000")
    ins_r = _insert("requests", REQUEST_COLUMNS, "?")
    ins_p = _insert("payloads", PAYLOAD_COLUMNS, "?")
    for reqs, pays in rows(bin_id, n, host, "sqlite", batch=50_000):
        db.execute("BEGIN")
        db.executemany(ins_r, reqs)
        db.executemany(ins_p, pays)
        db.execute("COMMIT")
    db.execute(
        "UPDATE bins SET last_seq = ?, request_count = ?, max_requests = ? WHERE id = ?",
        (n, n, 10 * n, bin_id),
    )
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    plans = {
        name: [r[3] for r in db.execute(f"EXPLAIN QUERY PLAN {_list_sql('?')}", (bin_id, b))]
        for name, b in (("first page", FIRST_BEFORE), ("depth", n - depth(n)))
    }
    db.close()
    size = Path(path).stat().st_size + _size(Path(path + "-wal"))
    types = _sqlite_types(url, bin_id, 1)
    return {"db_mib": round(size / 2**20, 1), "notes": notes, "types": types, "plans": plans}


def _sqlite_types(url: str, bin_id: str, seq: int) -> dict[str, str] | None:
    """Storage classes (and the time's shape) of one row, to compare generated with app-written."""
    cols = ", ".join(f"typeof({c})" for c in REQUEST_COLUMNS)
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        row = db.execute(
            f"SELECT {cols}, length(received_at) FROM requests WHERE bin_id = ? AND seq = ?",  # noqa: S608
            (bin_id, seq),
        ).fetchone()
    names = (*REQUEST_COLUMNS, "len(received_at)")
    return None if row is None else dict(zip(names, row, strict=True))


def write_postgres(url: str, bin_id: str, n: int, host: str) -> dict:
    import psycopg

    with psycopg.connect(url) as conn:
        notes = []
        for table, filled in (("requests", REQUEST_COLUMNS), ("payloads", PAYLOAD_COLUMNS)):
            info = conn.execute(
                "SELECT column_name, is_nullable = 'YES' OR column_default IS NOT NULL"
                " FROM information_schema.columns WHERE table_name = %s",
                (table,),
            ).fetchall()
            notes += check_columns(table, dict(info), filled)
        for reqs, pays in rows(bin_id, n, host, "postgresql", batch=100_000):
            with conn.cursor() as cur:
                with cur.copy(f"COPY requests ({', '.join(REQUEST_COLUMNS)}) FROM STDIN") as cp:
                    for r in reqs:
                        cp.write_row(r)
                with cur.copy(f"COPY payloads ({', '.join(PAYLOAD_COLUMNS)}) FROM STDIN") as cp:
                    for p in pays:
                        cp.write_row(p)
            conn.commit()
        conn.execute(
            "UPDATE bins SET last_seq = %s, request_count = %s, max_requests = %s WHERE id = %s",
            (n, n, 10 * n, bin_id),
        )
        # Ids were given explicitly; move the serial on so the app's next insert does not collide.
        conn.execute("SELECT setval(pg_get_serial_sequence('requests', 'id'), %s)", (n,))
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        # Autovacuum would analyze soon after a load this size; do it now so plans are stable.
        conn.execute("VACUUM ANALYZE requests")
        conn.execute("VACUUM ANALYZE payloads")
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        plans = {}
        for name, b in (("first page", FIRST_BEFORE), ("depth", n - depth(n))):
            plan = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {_list_sql('%s')}", (bin_id, b))
            plans[name] = [r[0] for r in plan]
    return {"db_mib": round(size / 2**20, 1), "notes": notes, "plans": plans}


def depth(n: int) -> int:
    """How far below the newest request the deep page starts (half-way for small bins)."""
    return min(DEPTH, n // 2)


def _insert(table: str, cols: tuple[str, ...], p: str) -> str:
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join([p] * len(cols))})"  # noqa: S608


def _list_sql(p: str) -> str:
    return LIST_SQL.format(cols=", ".join(f"requests.{c}" for c in REQUEST_COLUMNS), p=p)


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def measure(base: str, bin_id: str, key: str, n: int) -> dict[str, dict]:
    """Time each read through the API (after warm-up) and check what it answered."""
    api = f"{base}/api/v1/bins/{bin_id}"
    rng = random.Random(7)
    picks = [rng.randint(1, n) for _ in range(SAMPLES + WARMUP)]
    out: dict[str, dict] = {}
    with requests.Session() as s:
        s.headers.update(bearer(key))

        def timed(label: str, make: Callable[[int], tuple[str, dict, Callable]]) -> None:
            times = []
            stopped_early = 0
            for i in range(SAMPLES + WARMUP):
                url, params, check = make(i)
                t0 = time.perf_counter()
                r = s.get(url, params=params, timeout=60)
                dt = time.perf_counter() - t0
                r.raise_for_status()
                check(r)
                if i >= WARMUP:
                    times.append(dt)
                    stopped_early += "searched_down_to" in r.json() if "q" in params else 0
            out[label] = timing(times)
            if label.startswith("search: "):
                out[label]["samples_s"] = times
                out[label]["stopped_early"] = stopped_early

        def bin_ok(r):
            assert r.json()["last_seq"] == n and r.json()["request_count"] == n, r.text[:300]

        def page_ok(first: int):
            def check(r):
                page = r.json()["requests"]
                assert len(page) == 50 and page[0]["seq"] == first, [x["seq"] for x in page[:3]]

            return check

        def deep(i):
            before = n - depth(n) - min(1000, n // 100) * i
            return f"{api}/requests", {"limit": 50, "before": before}, page_ok(before - 1)

        def detail_ok(seq):
            def check(r):
                assert r.json()["seq"] == seq, r.text[:300]

            return check

        timed("GET bin", lambda i: (api, {}, bin_ok))
        timed("list, first page", lambda i: (f"{api}/requests", {"limit": 50}, page_ok(n)))
        timed(f"list at depth (before = last_seq - {depth(n):,})", deep)
        search_all: list[float] = []

        def searched(label: str, make: Callable[[int], tuple[str, dict, Callable]]) -> None:
            timed(f"search: {label}", make)
            search_all.extend(out[f"search: {label}"].pop("samples_s"))

        def found(seq: int | None, full: bool):
            def check(r):
                seqs = [x["seq"] for x in r.json()["requests"]]
                # An answer that stopped early has not looked below searched_down_to.
                below = r.json().get("searched_down_to", -1)
                assert seq is None or seq in seqs or seq < below, (seq, seqs[:5], below)
                assert not full or len(seqs) == 50, len(seqs)

            return check

        rare = [rng.randint(10_001, n) if n > 20_000 else rng.randint(1, n) for _ in picks]
        rare = [x + 1 if x in (123456, 8000) else x for x in rare]
        searched("rare word (a request's number)", lambda i: (
            f"{api}/requests", {"q": str(rare[i])}, found(rare[i], False)))  # fmt: skip
        for label, q in SEARCHES:
            full = label in ("common word", "phrase", "two words", "prefix")
            searched(label, lambda i, q=q, full=full: (
                f"{api}/requests", {"q": q}, found(None, full)))  # fmt: skip

        def deep_search(i):
            return f"{api}/requests", {"q": "lorem", "before": n - depth(n) - i}, found(None, True)

        searched(f"common word at depth (before = last_seq - {depth(n):,})", deep_search)
        out["search: all kinds"] = timing(search_all)
        label, q = FOLLOWED
        out[f"{label}, followed to the end"] = follow_to_end(s, f"{api}/requests", q)
        timed("request detail", lambda i: (f"{api}/requests/{picks[i]}", {}, detail_ok(picks[i])))
        timed("raw body", lambda i: (f"{api}/requests/{picks[i]}/raw", {}, lambda r: None))
        walk, before = [], None
        for _ in range(WALK_PAGES):
            params = {"limit": 50, **({"before": before} if before else {})}
            t0 = time.perf_counter()
            r = s.get(f"{api}/requests", params=params, timeout=60)
            walk.append(time.perf_counter() - t0)
            r.raise_for_status()
            before = r.json()["next_before"]
        out[f"list, walking cursors ({WALK_PAGES} pages)"] = {**timing(walk), "last_before": before}
    return out


def follow_to_end(s: requests.Session, url: str, q: str) -> dict:
    """Time a search from its first call until next_before is null; check that it found nothing."""
    totals, calls, slowest = [], 0, 0.0
    for _ in range(FOLLOW_SAMPLES):
        calls, before, t0 = 0, None, time.perf_counter()
        while True:
            t1 = time.perf_counter()
            r = s.get(url, params={"q": q, **({"before": before} if before else {})}, timeout=60)
            slowest = max(slowest, time.perf_counter() - t1)
            r.raise_for_status()
            calls += 1
            assert r.json()["requests"] == [], r.text[:300]
            before = r.json()["next_before"]
            if before is None:
                break
        totals.append(time.perf_counter() - t0)
    return {**timing(totals), "calls": calls, "slowest_call_ms": round(slowest * 1000, 2)}


def print_table(out: dict) -> None:
    print(f"\nbig bin: {out['rows']:,} requests; median/p95/max of {SAMPLES} requests each "
          f"after {WARMUP} warm-up (1 run)")  # fmt: skip
    head = ["database", "read", "median ms", "p95 ms", "max ms", "target", "note"]
    table = []
    for db in out["databases"]:
        if "error" in db:
            table.append([db["database"], "FAILED", db["error"][:80], "", "", "", ""])
            continue
        for label, t in db.get("timings", {}).items():
            limit = next((v for k, v in TARGET_MS.items() if label.startswith(k)), None)
            target = ""
            if limit is not None:
                target = f"< {limit} ms " + ("ok" if t["median_ms"] < limit else "MISSED")
            note = ""
            if t.get("stopped_early"):
                note = f"first answer; {t['stopped_early']}/{t['n']} stopped early"
            if "calls" in t:
                note = f"{t['calls']} calls, slowest {t['slowest_call_ms']} ms"
            row = [db["database"], label, t["median_ms"], t["p95_ms"], t["max_ms"], target, note]
            table.append(row)
    print_rows(head, table)
    for db in out["databases"]:
        if "error" in db:
            continue
        print(f"\n{db['database']}: generated {db['rows']:,} rows in {db['generate_s']} s; "
              f"database {db['db_mib']} MiB; gunicorn start over it {db['start_s']} s; "
              f"{db['log_problem_count']} problem lines in the server log")  # fmt: skip
        if "capture_after" in db:
            print(f"  a capture through the app afterwards: {db['capture_after']} (status, seq)")
        if db.get("types_app_row") is not None:
            same = {k: v for k, v in db["types"].items() if v != db["types_app_row"].get(k)}
            print(
                "  generated row stored like the app's own: "
                + ("yes" if not same else f"NO, differs in {same} vs {db['types_app_row']}")
            )
        for name, plan in db["plans"].items():
            print(f"  list query plan ({name}): " + " | ".join(x.strip() for x in plan[:6]))
        for note in db["notes"]:
            print(f"  note: {note}")
