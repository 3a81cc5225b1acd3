"""The SQLite WAL file does not keep the size of its biggest stretch between checkpoints."""

from __future__ import annotations

import os
import sqlite3

from app.store import engine


def test_the_wal_file_is_cut_back_when_it_starts_over(tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "WAL_SIZE_LIMIT", 1024 * 1024)
    path = tmp_path / "wal.db"
    conn = sqlite3.connect(path)
    engine.tune_sqlite_connection(conn, 1000)
    conn.execute("PRAGMA wal_autocheckpoint = 0")  # as the capture writer's connections
    conn.execute("CREATE TABLE t (x BLOB)")
    # A big transaction: deleting a few expired bins at once writes this much.
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO t VALUES (?)", [(os.urandom(1000),) for _ in range(20_000)])
    conn.execute("COMMIT")
    wal = tmp_path / "wal.db-wal"
    assert wal.stat().st_size > 16 * 1024 * 1024
    busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert (busy, copied) == (0, frames)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO t VALUES (1)")  # the next writer starts the WAL over
    conn.execute("COMMIT")
    assert wal.stat().st_size <= 1024 * 1024
    conn.close()
