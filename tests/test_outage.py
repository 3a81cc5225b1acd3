"""Database unavailable or full: 503 with Retry-After, never a 2xx for what was not stored."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
import requests
from flask_migrate import upgrade
from harness import SUITE_DATABASE, Gunicorn, csrf_token
from sqlalchemy import event

from app import create_app
from app.extensions import db


def listed(client, bin_id: str) -> list[int]:
    return [r["seq"] for r in client.get(f"/api/v1/bins/{bin_id}/requests").json["requests"]]


def test_a_locked_database_gets_503_and_service_resumes(tmp_path):
    # Its own app on an SQLite file, whose writers give up on a held lock after 100 ms.
    path = tmp_path / "locked.db"
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "HOOKSCOPE_SQLITE_BUSY_TIMEOUT_MS": 100}
    )
    with app.app_context():
        upgrade()
    client = app.test_client()
    client.environ_base["HTTP_X_CSRFTOKEN"] = csrf_token(client)
    new_bin = client.post("/api/v1/bins").json
    client.post(f"/h/{new_bin['id']}", data=b"before")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process hogging the database
    try:
        response = client.post(f"/h/{new_bin['id']}", data=b"during")
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert "nothing was stored" in response.text
        # Changes need the write lock too, and say so the same way.
        api = client.patch(f"/api/v1/bins/{new_bin['id']}", json={"name": "x"})
        assert api.status_code == 503
        assert api.json["error"] == "storage_unavailable"
        assert api.headers["Retry-After"] == "5"
        # Reading goes on: in WAL mode a writer never blocks readers.
        assert listed(client, new_bin["id"]) == [1]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert client.post(f"/h/{new_bin['id']}", data=b"after").status_code == 200
    assert listed(client, new_bin["id"]) == [2, 1]


def test_a_full_database_gets_503_and_keeps_everything_else(app, client, new_bin):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("fills SQLite with max_page_count")
    client.post(f"/h/{new_bin['id']}", data=b"small")

    def cap_size(dbapi_conn, _record):
        # As if the disk were full: the file may not grow past its current size.
        dbapi_conn.execute("PRAGMA max_page_count = 1")

    with app.app_context():
        event.listen(db.engine, "connect", cap_size)
        db.engine.dispose()
    try:
        response = client.post(f"/h/{new_bin['id']}", data=b"x" * 500_000)
        assert response.status_code == 503
        assert "Retry-After" in response.headers
    finally:
        with app.app_context():
            event.remove(db.engine, "connect", cap_size)
            db.engine.dispose()
    assert listed(client, new_bin["id"]) == [1]
    assert client.get(f"/api/v1/bins/{new_bin['id']}/requests/1/raw").data == b"small"
    response = client.post(f"/h/{new_bin['id']}", data=b"x" * 500_000)
    assert response.status_code == 200
    assert response.headers["X-Hookscope-Seq"] == "2"


def test_a_capture_waiting_for_the_sqlite_lock_under_gunicorn_stalls_nobody_else(tmp_path):
    """The write lock held elsewhere: the capture waits for it off the event loop, then stores."""
    if SUITE_DATABASE != "sqlite":
        pytest.skip("holds SQLite's write lock")
    with Gunicorn(tmp_path) as server:
        bin_ = server.create_bin()
        holder = sqlite3.connect(tmp_path / "hookscope.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        answers: list[requests.Response] = []
        sender = threading.Thread(
            target=lambda: answers.append(requests.post(bin_["capture_url"], data=b"waited"))
        )
        sender.start()
        health: list[float] = []
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            started = time.monotonic()
            assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
            health.append(time.monotonic() - started)
            time.sleep(0.05)
        assert sender.is_alive(), "the capture was answered while the lock was held"
        holder.execute("COMMIT")
        holder.close()
        sender.join(timeout=10)
        assert answers[0].status_code == 200
        raw = requests.get(
            f"{server.url}/api/v1/bins/{bin_['id']}/requests/1/raw", auth=server.auth, timeout=5
        )
        assert raw.content == b"waited"
    # The event loop kept serving while the capture waited: no health check took long.
    assert max(health) < 0.5, health
