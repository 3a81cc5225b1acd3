"""Scale-out: several gunicorn processes on two ports share PostgreSQL and a Redis message queue.

Needs HOOKSCOPE_TEST_POSTGRES_URL (a PostgreSQL role that may create databases) and
HOOKSCOPE_TEST_REDIS_URL. Without them these tests skip, unless HOOKSCOPE_REQUIRE_SCALEOUT=1
(as in CI), where a missing engine is a failure.
"""

from __future__ import annotations

import os
import queue
import time

import pytest
import requests
import socketio
from engines import scaleout_unavailable
from harness import POSTGRES_URL, Gunicorn, drop_postgres_database, fresh_postgres_database

REDIS = os.environ.get("HOOKSCOPE_TEST_REDIS_URL")

if not (POSTGRES_URL and REDIS):
    scaleout_unavailable(
        "scale-out needs HOOKSCOPE_TEST_POSTGRES_URL and HOOKSCOPE_TEST_REDIS_URL", module=True
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two gunicorn masters, two workers each, one PostgreSQL database, one Redis."""
    database = fresh_postgres_database()
    env = {"DATABASE_URL": database, "REDIS_URL": REDIS, "HOOKSCOPE_WORKERS": "2"}
    a = Gunicorn(tmp_path_factory.mktemp("a"), env=env)
    b = Gunicorn(tmp_path_factory.mktemp("b"), env=env)
    try:
        # Started together: both masters run the migrations, the advisory lock serialises them.
        a.start(), b.start()
        yield a, b
    finally:
        a.stop(), b.stop()
        drop_postgres_database(database)


def watcher(server: Gunicorn, bin_: dict) -> tuple[socketio.Client, queue.Queue]:
    events: queue.Queue = queue.Queue()
    sio = socketio.Client(reconnection=False)
    sio.on("captured", events.put)
    sio.connect(server.url, transports=["websocket"], wait_timeout=10)
    request = {"bin": bin_["id"], "after": None, "key": bin_["read_key"]}
    assert sio.call("watch", request, timeout=10)["ok"] is True
    return sio, events


def test_a_capture_on_one_host_appears_live_on_the_other(cluster):
    a, b = cluster
    bin_ = a.create_bin()
    sio, events = watcher(b, bin_)
    try:
        sent = []
        for i in range(10):
            response = requests.post(f"{a.url}/h/{bin_['id']}/from-a/{i}", data=b"x", timeout=10)
            assert response.status_code == 200
            sent.append(int(response.headers["X-Hookscope-Seq"]))
        received = [events.get(timeout=10)["seq"] for _ in sent]
        assert sorted(received) == sent == list(range(1, 11))
    finally:
        sio.disconnect()


def test_both_hosts_serve_the_same_bins_and_history(cluster):
    a, b = cluster
    bin_ = b.create_bin()
    for server in (a, b, a, b):
        assert requests.put(f"{server.url}/h/{bin_['id']}", data=b"hi", timeout=10).ok
    for server in (a, b):
        url = f"{server.url}/api/v1/bins/{bin_['id']}/requests"
        auth = {"Authorization": f"Bearer {bin_['read_key']}"}
        page = requests.get(url, headers=auth, timeout=10).json()
        assert [r["seq"] for r in page["requests"]] == [4, 3, 2, 1]


def test_only_websocket_is_offered_with_a_message_queue(cluster):
    a, _ = cluster
    # Long-polling would need sticky sessions across processes; the server refuses it outright.
    response = requests.get(f"{a.url}/socket.io/?EIO=4&transport=polling", timeout=10)
    assert response.status_code == 400


def test_concurrent_captures_into_many_bins_across_processes_all_land(cluster):
    """Batches from four workers lock the same bins; in a fixed order, so nobody deadlocks."""
    from concurrent.futures import ThreadPoolExecutor

    a, b = cluster
    bins = [a.create_bin() for _ in range(6)]

    def send(i: int) -> int:
        server, bin_ = (a, b)[i % 2], bins[(i * 7) % len(bins)]
        with requests.Session() as session:
            return session.post(
                f"{server.url}/h/{bin_['id']}/{i}", data=b"m", timeout=30
            ).status_code

    with ThreadPoolExecutor(max_workers=32) as pool:
        statuses = list(pool.map(send, range(600)))
    assert statuses == [200] * 600
    for bin_ in bins:
        seqs, before = [], None
        while True:
            params = {"limit": 200, **({"before": before} if before else {})}
            page = requests.get(
                f"{a.url}/api/v1/bins/{bin_['id']}/requests",
                params=params,
                headers={"Authorization": f"Bearer {bin_['read_key']}"},
                timeout=10,
            ).json()
            seqs += [r["seq"] for r in page["requests"]]
            if not (before := page["next_before"]):
                break
        assert sorted(seqs) == list(range(1, 101))


def test_a_burst_published_in_batches_reaches_the_other_host_whole(cluster):
    """Under a burst, live events queue up and go to Redis several to a message
    (app/live/fanout.py); the other host unpacks each batch and its watcher gets every capture
    once."""
    import json
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import redis

    a, b = cluster
    bin_ = a.create_bin()
    sio, events = watcher(b, bin_)
    seen = {"batches": 0, "emits": 0}
    listener = redis.Redis.from_url(REDIS).pubsub(ignore_subscribe_messages=True)
    listener.subscribe("hookscope")
    stop = threading.Event()

    def count() -> None:
        while not stop.is_set():
            message = listener.get_message(timeout=0.2)
            if message is None:
                continue
            data = json.loads(message["data"])
            if data.get("method") == "hookscope.emits":
                seen["batches"] += 1
                seen["emits"] += len(data["messages"])

    counter = threading.Thread(target=count)
    counter.start()
    try:

        def send(i: int) -> int:
            response = requests.post(f"{a.url}/h/{bin_['id']}/{i}", data=b"burst", timeout=30)
            assert response.status_code == 200
            return int(response.headers["X-Hookscope-Seq"])

        with ThreadPoolExecutor(max_workers=32) as pool:
            sent = sorted(pool.map(send, range(300)))
        assert sent == list(range(1, 301))
        received = [events.get(timeout=15)["seq"] for _ in sent]
        assert sorted(received) == sent  # each once, none lost in a batch
        assert events.empty()
    finally:
        stop.set()
        counter.join()
        listener.close()
        sio.disconnect()
    assert seen["batches"] >= 1, seen  # the burst did go out in batches
    assert seen["emits"] > seen["batches"]


def test_captures_are_stored_after_the_database_drops_every_connection(cluster):
    """Each writer keeps its own connection between batches, with no ping: a batch that finds it
    closed (a restart, a failover, an idle timeout) connects again and is stored, not refused."""
    import psycopg
    from sqlalchemy.engine import make_url

    a, b = cluster
    bin_ = a.create_bin()
    for server in (a, b, a, b):
        assert requests.post(f"{server.url}/h/{bin_['id']}", data=b"warm", timeout=10).ok
    url = make_url(a.env["DATABASE_URL"]).set(drivername="postgresql")
    others = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
        pids = [pid for (pid,) in conn.execute(f"SELECT pid {others}").fetchall()]
        assert len(pids) >= 2
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        # Wait for those to go, as after a restart. (Others may connect meanwhile: the servers'
        # periodic work, usage counts and storage figures, connects again at once.)
        deadline = time.monotonic() + 10
        gone = "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)"
        while conn.execute(gone, (pids,)).fetchone()[0]:
            assert time.monotonic() < deadline, "the terminated backends did not go"
            time.sleep(0.05)
    statuses = [
        requests.post(f"{server.url}/h/{bin_['id']}", data=b"after", timeout=10).status_code
        for server in (a, b) * 8
    ]
    assert statuses == [200] * 16
    log = a.log_text() + b.log_text()
    assert "connecting again" in log
    assert "Traceback" not in log
