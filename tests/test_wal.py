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


def test_a_checkpoint_that_cannot_catch_up_waits_for_the_writers_so_the_wal_starts_over(
    tmp_path, monkeypatch
):
    """Under a steady load every PASSIVE checkpoint finds frames it could not copy (here: a
    reader on an older snapshot stands for the batches written while it copied), so the WAL
    would never start over. Past the limit the writer's checkpoint waits (RESTART)."""
    import threading
    import time

    from app.store.sqlite import SqliteWriter

    monkeypatch.setattr(engine, "WAL_SIZE_LIMIT", 1024 * 1024)
    path = tmp_path / "steady.db"
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    engine.tune_sqlite_connection(conn, 10_000)
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("CREATE TABLE t (x BLOB)")
    reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM t").fetchone()  # holds the snapshot before the rows
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO t VALUES (?)", [(os.urandom(1000),) for _ in range(5_000)])
    conn.execute("COMMIT")
    checkpointing = threading.Event()

    def reader_moves_on() -> None:
        checkpointing.wait()
        time.sleep(0.3)  # while the checkpoint runs: a RESTART waits for this, PASSIVE does not
        reader.execute("COMMIT")

    mover = threading.Thread(target=reader_moves_on)
    mover.start()
    checkpointing.set()
    SqliteWriter(None).checkpoint(conn)
    mover.join()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO t VALUES (1)")  # starts the WAL over, if it was all copied
    conn.execute("COMMIT")
    assert (tmp_path / "steady.db-wal").stat().st_size <= 1024 * 1024
    conn.close()
    reader.close()
