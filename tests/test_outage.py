"""Database unavailable or full: 503 with Retry-After, never a 2xx for what was not stored."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
import requests
from flask_migrate import upgrade
from harness import SUITE_DATABASE, Gunicorn, SqliteLockHolder, csrf_token
from sqlalchemy import event

from app import create_app, live
from app.extensions import db, socketio
from app.store import engine as storage


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
        # A search first indexes what is queued for it ("before"), which needs the write lock.
        search = client.get(f"/api/v1/bins/{new_bin['id']}/requests", query_string={"q": "before"})
        assert search.status_code == 503
        assert search.headers["Retry-After"] == "5"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert client.post(f"/h/{new_bin['id']}", data=b"after").status_code == 200
    assert listed(client, new_bin["id"]) == [2, 1]
    found = client.get(f"/api/v1/bins/{new_bin['id']}/requests", query_string={"q": "before"})
    assert [r["seq"] for r in found.json["requests"]] == [1]


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


@pytest.fixture
def lockable(tmp_path):
    """An app on an SQLite file whose writers give up on a held lock after 100 ms, and a holder."""
    path = tmp_path / "lockable.db"
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}",
            "HOOKSCOPE_SQLITE_BUSY_TIMEOUT_MS": 100,
            "RATELIMIT_ENABLED": False,
        }
    )
    with app.app_context():
        upgrade()
    yield app, SqliteLockHolder(path)
    with app.app_context():
        db.engine.dispose()


def storage_events(sio) -> list[dict]:
    return [e["args"][0] for e in sio.get_received() if e["name"] == "storage"]


def test_open_pages_hear_of_a_storage_failure_once_per_period(lockable):
    app, holder = lockable
    client = app.test_client()
    client.environ_base["HTTP_X_CSRFTOKEN"] = csrf_token(client)
    new_bin = client.post("/api/v1/bins").json
    live.publish_storage_status(True, 5)  # whatever an earlier test left, this process says ok
    watcher = socketio.test_client(app)
    other_bins_page = socketio.test_client(app)
    holder.hold()
    try:
        answers = [
            client.patch(f"/api/v1/bins/{new_bin['id']}", json={"name": "x"}) for _ in range(5)
        ]
        assert [a.status_code for a in answers] == [503] * 5
        # Every open page, whatever bin it shows, hears once: not once per failure.
        assert storage_events(watcher) == [{"ok": False, "retry_after": 5}]
        assert storage_events(other_bins_page) == [{"ok": False, "retry_after": 5}]
    finally:
        holder.release()
    live.publish_storage_status(True, 5)
    live.publish_storage_status(True, 5)  # only the change is news
    assert storage_events(watcher) == [{"ok": True, "retry_after": 5}]
    watcher.disconnect()
    other_bins_page.disconnect()


def test_a_failure_is_told_again_after_the_period(socket_client):
    live.publish_storage_status(True, 1)
    socket_client.get_received()
    for _ in range(50):
        live.publish_storage_status(False, 1)
    assert storage_events(socket_client) == [{"ok": False, "retry_after": 1}]
    time.sleep(1.05)
    live.publish_storage_status(False, 1)
    live.publish_storage_status(False, 1)
    assert storage_events(socket_client) == [{"ok": False, "retry_after": 1}]
    live.publish_storage_status(True, 1)
    assert storage_events(socket_client) == [{"ok": True, "retry_after": 1}]


def test_readyz_says_whether_captures_would_be_stored(lockable, monkeypatch):
    app, holder = lockable
    monkeypatch.setattr(storage, "CHECK_EVERY_SECONDS", 0)  # every call checks, for this test
    client = app.test_client()
    ready = client.get("/readyz").json
    assert ready["ok"] is True and ready["checks"] == {"database": {"ok": True}}
    holder.hold()
    try:
        refused = client.get("/readyz")
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "5"
        assert refused.json["error"] == "storage_unavailable"
        # Which part failed, and how, as the driver said it.
        assert refused.json["degraded"] == ["database"]
        database = refused.json["checks"]["database"]
        assert database["ok"] is False
        assert database["error"] == "OperationalError: database is locked"
        # /healthz asks nothing of the database: the process is alive, a different question.
        assert client.get("/healthz").status_code == 200
    finally:
        holder.release()
    assert client.get("/readyz").status_code == 200


def test_readyz_answers_ok_on_a_healthy_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["ok"] is True
    assert response.json["checks"] == {"database": {"ok": True}}


def test_healthz_answers_without_the_database(app, client, new_bin):
    """Liveness is the process's own: a database that is away is readiness's question."""
    with app.app_context():
        path = db.engine.url.database
        db.engine.dispose()
    if not path or not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("makes an SQLite file unreadable")
    with open(path, "rb") as f:
        original = f.read()
    with open(path, "wb") as f:
        f.write(b"this is not a database" * 100)
    try:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503
    finally:
        with app.app_context():
            db.engine.dispose()
        with open(path, "wb") as f:
            f.write(original)


def test_readyz_checks_the_database_at_most_once_a_second(lockable):
    app, holder = lockable
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    holder.hold()
    try:
        # Within the second, the answer is the last check's: a flood of probes costs one check.
        assert client.get("/readyz").status_code == 200
        time.sleep(storage.CHECK_EVERY_SECONDS + 0.05)
        assert client.get("/readyz").status_code == 503
    finally:
        holder.release()


def test_creating_a_bin_from_the_home_page_during_an_outage_shows_the_banner_page(lockable):
    app, holder = lockable
    client = app.test_client()
    token = csrf_token(client)
    holder.hold()
    try:
        response = client.post("/bins", data={"csrf_token": token})
    finally:
        holder.release()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    page = response.text
    assert 'id="storage-banner"' in page and "js/unavailable.js" in page
    assert "The bin was not created" in page and 'data-reload="false"' in page
    assert 'action="/bins"' in page  # the button to try again


def test_a_page_that_cannot_read_the_database_says_so_and_reloads(lockable):
    app, _ = lockable
    client = app.test_client()
    client.environ_base["HTTP_X_CSRFTOKEN"] = csrf_token(client)
    new_bin = client.post("/api/v1/bins").json
    with app.app_context():
        path = db.engine.url.database
        db.engine.dispose()
    with open(path, "rb") as f:
        original = f.read()
    with open(path, "wb") as f:
        f.write(b"this is not a database" * 100)  # unreadable, as after a bad restore
    try:
        response = client.get(f"/bins/{new_bin['id']}")
        api = client.get(f"/api/v1/bins/{new_bin['id']}/requests")
    finally:
        with app.app_context():
            db.engine.dispose()
        with open(path, "wb") as f:
            f.write(original)
    assert response.status_code == 503
    assert "This page needs the database" in response.text
    assert 'data-reload="true"' in response.text
    assert api.status_code == 503 and api.json["error"] == "storage_unavailable"
    assert client.get(f"/bins/{new_bin['id']}").status_code == 200


def test_a_refused_capture_tells_open_pages_and_the_next_stored_one_clears_it(lockable):
    app, holder = lockable
    client = app.test_client()
    client.environ_base["HTTP_X_CSRFTOKEN"] = csrf_token(client)
    new_bin = client.post("/api/v1/bins").json
    client.post(f"/h/{new_bin['id']}", data=b"before")  # a stored capture: storage is fine
    page = socketio.test_client(app)
    holder.hold()
    try:
        assert client.post(f"/h/{new_bin['id']}", data=b"during").status_code == 503
        assert storage_events(page) == [{"ok": False, "retry_after": 5}]
    finally:
        holder.release()
    assert client.post(f"/h/{new_bin['id']}", data=b"after").status_code == 200
    assert storage_events(page) == [{"ok": True, "retry_after": 5}]
    page.disconnect()
