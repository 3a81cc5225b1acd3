"""Fixtures: the app on a fresh SQLite file, its clients, and the real app under gunicorn."""

from __future__ import annotations

import pytest
from flask_migrate import upgrade
from harness import Gunicorn, csrf_token, database_url_for, drop_postgres_database

from app import create_app
from app.extensions import db, socketio


@pytest.fixture
def app(tmp_path):
    """The app on a database of its own: an SQLite file, or PostgreSQL when configured."""
    database = database_url_for(tmp_path)
    # Flood limits are off here (tests send bursts); tests/test_ratelimits.py turns them on.
    settings = {
        "SECRET_KEY": "test",
        "SQLALCHEMY_DATABASE_URI": database,
        "RATELIMIT_ENABLED": False,
    }
    app = create_app({"TESTING": True, **settings})
    with app.app_context():
        upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()
    if database.startswith("postgresql"):
        drop_postgres_database(database)


@pytest.fixture
def browser(app):
    """Make browsers: clients that keep cookies and send their pages' CSRF token with changes."""

    def make():
        client = app.test_client()
        client.environ_base["HTTP_X_CSRFTOKEN"] = csrf_token(client)
        return client

    return make


@pytest.fixture
def client(browser):
    """One browser."""
    return browser()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def new_bin(client):
    """Create a bin through the API and return its JSON."""
    response = client.post("/api/v1/bins")
    assert response.status_code == 201
    return response.json


@pytest.fixture
def socket_client(app, client):
    """A Socket.IO client connected to the app in-process, sharing the HTTP client's cookies."""
    sio = socketio.test_client(app, flask_test_client=client)
    assert sio.is_connected()
    yield sio
    if sio.is_connected():
        sio.disconnect()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The real app under gunicorn on a free loopback port, shared by the session's tests."""
    workdir = tmp_path_factory.mktemp("server")
    with Gunicorn(workdir) as running:
        yield running


@pytest.fixture
def fresh_server(tmp_path):
    """A gunicorn of the test's own, for tests that stop or restart it."""
    running = Gunicorn(tmp_path)
    yield running
    running.stop()
