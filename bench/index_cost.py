"""What the search index costs each capture: 10,000 captures with and without it, both engines.

The index is kept by triggers (migration 0003), so its cost lands on whatever inserts. Measured
in-process, on the database alone (no HTTP), two ways:

- ``app path``: ``Recorder.record`` as the capture gate calls it, one transaction per capture;
- ``batched``: plain DB-API ``executemany``, 100 captures per transaction, as the rewritten write
  path (a writer thread with group commit) will do.

"without" is the schema at revision 0002, "with" at head; everything else is equal. Each run
uses a fresh database; variants alternate order between runs; medians are reported.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime

from big_rows import PAYLOAD_COLUMNS, REQUEST_COLUMNS, rows
from common import print_rows

BATCH = 100
REVISIONS = {"without index": "0002", "with index": "head"}


def run(harness, captures: int, runs: int, databases: list[str]) -> dict:
    """Time every (database, path, variant) ``runs`` times; print a table; return the numbers."""
    sys.path.insert(0, str(harness.ROOT))  # the code under test (run.py --code)
    out: dict = {"captures": captures, "runs": runs, "batch": BATCH, "results": []}
    for kind in databases:
        for path in ("app path", "batched"):
            times: dict[str, list[float]] = {v: [] for v in REVISIONS}
            for n in range(runs):
                order = list(REVISIONS) if n % 2 == 0 else list(reversed(REVISIONS))
                for variant in order:
                    seconds = one(harness, kind, path, REVISIONS[variant], captures)
                    times[variant].append(seconds)
                    print(f"  {kind} {path} {variant}: {seconds:.2f} s", flush=True)
            without, with_ = (statistics.median(times[v]) for v in REVISIONS)
            out["results"].append(
                {
                    "database": kind,
                    "path": path,
                    "runs_s": times,
                    "without_s": round(without, 3),
                    "with_s": round(with_, 3),
                    "per_capture_without_us": round(without / captures * 1e6),
                    "per_capture_with_us": round(with_ / captures * 1e6),
                    "added_per_capture_us": round((with_ - without) / captures * 1e6),
                    "ratio": round(with_ / without, 2),
                }
            )
    print_table(out)
    return out


def one(harness, kind: str, path: str, revision: str, captures: int) -> float:
    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import db
    from app.store import bins

    with tempfile.TemporaryDirectory(prefix="hookscope-index-cost-") as tmp:
        url = harness.fresh_postgres_database() if kind == "postgres" else f"sqlite:///{tmp}/c.db"
        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": url,
                "SECRET_KEY": "bench",
                # Room for every capture: retention deleting rows would be measured too.
                "HOOKSCOPE_DEFAULT_MAX_REQUESTS": 10 * captures,
                "HOOKSCOPE_MAX_REQUESTS_CEILING": 10 * captures,
            }
        )
        try:
            with app.app_context():
                upgrade(revision=revision)
                bin_id = bins.create().bin.id
                batches = list(rows(bin_id, captures, "127.0.0.1:8000", _dialect(kind), BATCH))
                record = _record if path == "app path" else _batched
                t0 = time.perf_counter()
                record(bin_id, batches, kind)
                seconds = time.perf_counter() - t0
                stored = db.session.scalar(db.text("SELECT count(*) FROM requests"))
                assert stored == captures, f"stored {stored} of {captures}"
                db.session.remove()
                db.engine.dispose()
        finally:
            if kind == "postgres":
                harness.drop_postgres_database(url)
    return seconds


def _dialect(kind: str) -> str:
    return "sqlite" if kind == "sqlite" else "postgresql"


def _record(bin_id: str, batches: list, kind: str) -> None:
    """Store each capture through the app's own write path, one transaction each."""
    from flask import current_app

    from app.domain.capture import Snapshot
    from app.store.recorder import recorder_of

    recorder = recorder_of(current_app._get_current_object())

    for reqs, pays in batches:
        for r, p in zip(reqs, pays, strict=True):
            fields = dict(zip(REQUEST_COLUMNS, r, strict=True))
            payload = dict(zip(PAYLOAD_COLUMNS, p, strict=True))
            snap = Snapshot(
                method=fields["method"],
                path=fields["path"],
                query_string=fields["query_string"],
                headers=json.loads(payload["headers"]),
                content_type=fields["content_type"],
                body=payload["body"],
                remote_addr=fields["remote_addr"],
                url=payload["url"],
                http_version=payload["http_version"],
                received_at=datetime.now(UTC),
            )
            assert recorder.record(bin_id, snap) is not None


def _batched(bin_id: str, batches: list, kind: str) -> None:
    """Store captures with plain DB-API executemany, BATCH to a transaction."""
    from app.extensions import db

    mark = "?" if kind == "sqlite" else "%s"

    def insert(table: str, cols: tuple[str, ...]) -> str:
        return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join([mark] * len(cols))})"

    conn = db.engine.raw_connection()
    try:
        cur = conn.cursor()
        for reqs, pays in batches:
            if kind == "sqlite":
                cur.execute("BEGIN IMMEDIATE")
            cur.executemany(insert("requests", REQUEST_COLUMNS), reqs)
            cur.executemany(insert("payloads", PAYLOAD_COLUMNS), pays)
            if kind == "sqlite":
                cur.execute("COMMIT")
            else:
                conn.commit()
        cur.close()
    finally:
        conn.close()


def print_table(out: dict) -> None:
    print(f"\nindex cost: {out['captures']:,} captures, median of {out['runs']} run(s)")
    head = ["database", "path", "without s", "with s", "µs/capture without", "with", "added", "x"]
    table = [
        [
            r["database"],
            r["path"] + (f" ({out['batch']}/tx)" if r["path"] == "batched" else " (1/tx)"),
            r["without_s"],
            r["with_s"],
            r["per_capture_without_us"],
            r["per_capture_with_us"],
            r["added_per_capture_us"],
            r["ratio"],
        ]
        for r in out["results"]
    ]
    print_rows(head, table)
