"""PostgreSQL connections for gevent workers (app/store/pgwait.py): they wait cooperatively."""

from __future__ import annotations

import time

import gevent
import pytest
from harness import POSTGRES_URL, drop_postgres_database, fresh_postgres_database

from app.store import pgwait

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="needs HOOKSCOPE_TEST_POSTGRES_URL")


@pytest.fixture
def database():
    url = fresh_postgres_database()
    yield url
    drop_postgres_database(url)


def test_queries_pipelines_and_big_messages_go_through(database):
    with pgwait.Connection.connect(database) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        cur = conn.cursor()
        with conn.pipeline():
            cur.execute("SELECT 2")
            assert cur.fetchall() == [(2,)]
            cur.execute("SELECT 3")
        assert cur.fetchall() == [(3,)]
        big = b"x" * (4 * 1024 * 1024)  # several socket buffers each way
        assert conn.execute("SELECT %b::bytea", (big,)).fetchone() == (big,)


def test_a_connection_waiting_for_its_reply_lets_other_greenlets_run(database):
    """Two greenlets each wait 0.3 s for PostgreSQL at the same time: 0.3 s in all, not 0.6."""
    conns = [pgwait.Connection.connect(database) for _ in range(2)]  # connecting blocks: not timed
    try:
        started = time.monotonic()
        sleeps = [gevent.spawn(conn.execute, "SELECT pg_sleep(0.3)") for conn in conns]
        gevent.joinall(sleeps, raise_error=True)
        elapsed = time.monotonic() - started
    finally:
        for conn in conns:
            conn.close()
    assert elapsed < 0.55
