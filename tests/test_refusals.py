"""Refusals are never silent: each bin counts what it refused and why, and the API says so.

Counted in each process and added to the database in batches (app/ingest/tally.py); read
through GET /api/v1/bins/<id>/usage. In-process apps add their counts when usage is read; under
gunicorn a greenlet adds them every 2 s, so those tests read until the counts arrive.
"""

from __future__ import annotations

import queue
import re
import socket
import time

import pytest
import requests
import socketio
from flask_migrate import upgrade
from harness import (
    SUITE_DATABASE,
    Gunicorn,
    SqliteLockHolder,
    database_url_for,
    drop_postgres_database,
)

from app import create_app
from app.extensions import db
from app.ingest import tally
from app.store import usage
from app.store.usage import DAY, HOUR, PERIOD_SECONDS, Counted

TOKEN = {"Authorization": "Bearer tok-123"}


@pytest.fixture
def counting(tmp_path):
    """An app with small limits: 4 captures at once per bin (then one an hour), 16-byte bodies."""
    database = database_url_for(tmp_path)
    app = create_app(
        {
            "SECRET_KEY": "test",
            "SQLALCHEMY_DATABASE_URI": database,
            "HOOKSCOPE_RATE_LIMIT_PER_BIN": "1/hour burst 4",
            "HOOKSCOPE_RATE_LIMIT_PER_ADDRESS": "",  # off
            "HOOKSCOPE_MAX_BODY_BYTES": 16,
        }
    )
    with app.app_context():
        upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()
    if database.startswith("postgresql"):
        drop_postgres_database(database)


def usage_of(client, bin_: dict) -> dict:
    owner = {"Authorization": f"Bearer {bin_['read_key']}"}
    response = client.get(f"/api/v1/bins/{bin_['id']}/usage", headers=owner)
    assert response.status_code == 200
    return response.json


def test_each_refusal_is_counted_for_its_bin_by_reason(counting):
    sender = counting.test_client()
    bin_ = sender.post("/api/v1/bins", json={"ingest_auth": {"type": "bearer", "token": "tok-123"}})
    bin_ = bin_.json
    other = counting.test_client().post("/api/v1/bins").json
    capture = f"/h/{bin_['id']}/hook"
    statuses = [
        sender.post(capture, data=b"first", headers=TOKEN).status_code,
        sender.post(capture, data=b"second!", headers=TOKEN).status_code,
        sender.post(capture, data=b"no token").status_code,  # stored as rejected
        sender.post(capture, data=b"x" * 17, headers=TOKEN).status_code,  # over 16 bytes
        *[sender.post(capture, data=b"flood", headers=TOKEN).status_code for _ in range(3)],
    ]
    assert statuses == [200, 200, 401, 413, 429, 429, 429]
    assert sender.post("/h/no-such-bin", data=b"?").status_code == 404

    counted = usage_of(sender, bin_)
    assert counted["captured"] == {
        "last_hour": 3,
        "last_day": 3,
        "bytes_last_hour": len(b"first" + b"second!" + b"no token"),
        "bytes_last_day": len(b"first" + b"second!" + b"no token"),
    }
    refused = counted["refused"]
    assert (refused["last_hour"], refused["last_day"]) == (5, 5)
    assert {k: v["last_hour"] for k, v in refused["by_reason"].items()} == {
        "rate_limit_bin": 3,
        "body_too_large": 1,
        "unauthorized": 1,
    }
    per_bin = refused["by_reason"]["rate_limit_bin"]
    assert per_bin["status"] == 429
    assert per_bin["setting"] == "HOOKSCOPE_RATE_LIMIT_PER_BIN"
    assert per_bin["summary"] == "refused by the per-bin limit"
    assert "HOOKSCOPE_RATE_LIMIT_PER_BIN" in per_bin["advice"]
    assert refused["by_reason"]["body_too_large"]["setting"] == "HOOKSCOPE_MAX_BODY_BYTES"
    # Nothing of it is charged to another bin; an unknown bin is counted by the process only.
    assert usage_of(sender, other)["refused"]["last_day"] == 0
    assert tally.tally_of(counting).process["no_such_bin"] == 1


def test_usage_needs_the_bins_read_key(counting):
    sender = counting.test_client()
    bin_ = sender.post("/api/v1/bins").json
    stranger = counting.test_client()
    assert stranger.get(f"/api/v1/bins/{bin_['id']}/usage").status_code == 404


def test_the_last_hour_and_day_count_whole_periods_and_old_ones_are_pruned(app, new_bin):
    now = 1_800_000_123.0
    current = now // PERIOD_SECONDS * PERIOD_SECONDS
    bin_id = new_bin["id"]
    rows = [
        Counted(bin_id, int(current), "rate_limit_bin", 5, 0),
        Counted(bin_id, int(current - HOUR), "rate_limit_bin", 7, 0),  # 60-70 min ago: in
        Counted(bin_id, int(current - HOUR - PERIOD_SECONDS), "rate_limit_bin", 11, 0),
        Counted(bin_id, int(current - DAY), "body_too_large", 13, 0),
        Counted(bin_id, int(current - DAY - PERIOD_SECONDS), "body_too_large", 17, 0),  # out
        Counted(bin_id, int(current - 3 * DAY), "captured", 19, 1900),  # pruned
        Counted(bin_id, int(current), "captured", 2, 300),
        Counted("a-deleted-bin", int(current), "rate_limit_bin", 23, 0),  # skipped
    ]
    with app.app_context():
        usage.add(db.engine, rows[:4])
        usage.add(db.engine, rows[4:])
        usage.add(db.engine, rows[:1])  # added to what is there
        recent = usage.recent([bin_id, "a-deleted-bin"], now=now)
        assert recent[bin_id] == {
            "captures_hour": 2,
            "captures_day": 2,
            "bytes_hour": 300,
            "bytes_day": 300,
            "refused_hour": 5 + 5 + 7,
            "refused_day": 5 + 5 + 7 + 11 + 13,
            "by_reason": {
                "rate_limit_bin": {"hour": 17, "day": 28},
                "body_too_large": {"hour": 0, "day": 13},
            },
        }
        assert recent["a-deleted-bin"]["refused_day"] == 0
        assert usage.prune(now=now) == 1  # the three-day-old period
        assert usage.recent([bin_id], now=now)[bin_id] == recent[bin_id]


def test_a_deleted_bin_takes_its_counts_with_it(app, client, new_bin):
    client.post(f"/h/{new_bin['id']}", data=b"x")
    client.get(f"/api/v1/bins/{new_bin['id']}/usage")  # adds this process's counts
    with app.app_context():
        assert usage.recent([new_bin["id"]])[new_bin["id"]]["captures_hour"] == 1
    assert client.delete(f"/api/v1/bins/{new_bin['id']}").status_code == 204
    with app.app_context():
        left = db.session.execute(db.text("SELECT count(*) FROM bin_usage")).scalar()
    assert left == 0


def test_counts_wait_while_storage_is_down_and_are_added_when_it_is_back(tmp_path):
    if SUITE_DATABASE != "sqlite":
        pytest.skip("holds an SQLite file's lock")
    path = tmp_path / "lockable.db"
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}",
            "HOOKSCOPE_SQLITE_BUSY_TIMEOUT_MS": 100,
            "HOOKSCOPE_MAX_BODY_BYTES": 4,
            "RATELIMIT_ENABLED": False,
        }
    )
    with app.app_context():
        upgrade()
    client = app.test_client()
    bin_ = client.post("/api/v1/bins").json
    assert client.post(f"/h/{bin_['id']}", data=b"too big").status_code == 413
    holder = SqliteLockHolder(path)
    holder.hold()
    try:
        assert tally.flush(app) == []  # kept for later
    finally:
        holder.release()
    assert tally.flush(app) == [bin_["id"]]
    with app.app_context():
        assert usage.recent([bin_["id"]])[bin_["id"]]["by_reason"] == {
            "body_too_large": {"hour": 1, "day": 1}
        }
        db.engine.dispose()


# Under gunicorn, over real sockets: every refusal a sender can meet, counted as sent.


def raw_exchange(port: int, head: bytes, body: bytes, *, close_write: bool = False) -> bytes:
    """Send a request head and part of a body; return what the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head + body)
        if close_write:
            sock.shutdown(socket.SHUT_WR)  # the sender gives up mid-body
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer and answer.endswith(b"\n"):
                break
        return answer


def partial_post(bin_id: str, declared: int) -> bytes:
    return (
        f"POST /h/{bin_id}/partial HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer tok-123\r\nContent-Length: {declared}\r\n\r\n"
    ).encode()


def test_refusals_by_reason_match_what_was_sent_under_gunicorn(tmp_path):
    env = {
        "HOOKSCOPE_RATE_LIMITS": "true",
        "HOOKSCOPE_RATE_LIMIT_PER_BIN": "1/hour burst 9",
        "HOOKSCOPE_RATE_LIMIT_PER_ADDRESS": "off",
        "HOOKSCOPE_MAX_BODY_BYTES": "1024",
        "HOOKSCOPE_BODY_TIMEOUT_SECONDS": "1",
    }
    with Gunicorn(tmp_path, env=env) as server:
        created = requests.post(
            f"{server.url}/api/v1/bins",
            json={"ingest_auth": {"type": "bearer", "token": "tok-123"}},
            timeout=10,
        ).json()
        server.auth.keys[created["id"]] = created["read_key"]
        bin_id, url = created["id"], created["capture_url"]
        events: queue.Queue = queue.Queue()
        watcher = socketio.Client(reconnection=False)
        watcher.on("refused", events.put)
        watcher.connect(server.url, transports=["websocket"], wait_timeout=10)
        try:
            watch = {"bin": bin_id, "after": None, "key": created["read_key"]}
            assert watcher.call("watch", watch, timeout=10)["ok"] is True

            sent = [requests.post(url, data=b"ok", headers=TOKEN, timeout=10) for _ in range(2)]
            sent += [requests.post(url, data=b"who?", timeout=10) for _ in range(2)]
            sent += [requests.post(url, data=b"x" * 2048, headers=TOKEN, timeout=10)] * 1
            sent += [requests.post(url, data=b"y" * 1500, headers=TOKEN, timeout=10)]
            assert [r.status_code for r in sent] == [200, 200, 401, 401, 413, 413]
            slow = raw_exchange(server.port, partial_post(bin_id, 100), b"0123456789")
            assert slow.startswith(b"HTTP/1.1 408"), slow[:200]
            for _ in range(2):
                cut = raw_exchange(server.port, partial_post(bin_id, 100), b"01", close_write=True)
                assert cut.startswith(b"HTTP/1.1 400"), cut[:200]
            flood = [requests.post(url, data=b"ok", headers=TOKEN, timeout=10) for _ in range(4)]
            assert [r.status_code for r in flood] == [429] * 4
            # Refused before any bin is known: counted by the process, in its log.
            garbled = raw_exchange(server.port, b"NOT HTTP AT ALL\r\n\r\n", b"")
            assert garbled.startswith(b"HTTP/1.1 400"), garbled[:200]

            expected = {
                "unauthorized": 2,
                "body_too_large": 2,
                "body_timeout": 1,
                "body_incomplete": 2,
                "rate_limit_bin": 4,
            }
            deadline = time.monotonic() + 30
            while True:
                owner = {"Authorization": f"Bearer {created['read_key']}"}
                counted = requests.get(
                    f"{server.url}/api/v1/bins/{bin_id}/usage", headers=owner, timeout=10
                ).json()
                by_reason = {k: v["last_hour"] for k, v in counted["refused"]["by_reason"].items()}
                if by_reason == expected or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert by_reason == expected
            assert counted["refused"]["last_hour"] == sum(expected.values())
            assert counted["captured"]["last_hour"] == 4  # two stored, two stored as rejected
            # Open pages are told, so they can read the counts again.
            assert events.get(timeout=10) == {"bin": bin_id}
        finally:
            watcher.disconnect()
        deadline = time.monotonic() + 10
        line = re.compile(r"refused before a bin was known \(this process\): .*=1")
        while not line.search(server.log_text()) and time.monotonic() < deadline:
            time.sleep(0.2)
    assert line.search(server.log_text()), server.log_text()[-2000:]
