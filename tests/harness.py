"""Run the real app under gunicorn on a free loopback port, for tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests
from requests.auth import AuthBase

ROOT = Path(__file__).resolve().parent.parent


# Where a PostgreSQL server is (a role that may create databases); scale-out tests need it.
POSTGRES_URL = os.environ.get("HOOKSCOPE_TEST_POSTGRES_URL", "")
# "postgres" runs the whole suite on PostgreSQL instead of SQLite files.
SUITE_DATABASE = os.environ.get("HOOKSCOPE_TEST_SUITE_DB", "sqlite")


def fresh_postgres_database() -> str:
    """Create an empty database on the server at HOOKSCOPE_TEST_POSTGRES_URL and return its URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(POSTGRES_URL).set(drivername="postgresql")
    name = f"hookscope_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(database_url: str) -> None:
    """Drop a database made by fresh_postgres_database, closing its connections."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    admin = url.set(database=make_url(POSTGRES_URL).database)
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        # FORCE cannot end a backend this role does not own (autovacuum at work on the new
        # database): wait a moment and retry, and leave the database behind if it persists.
        for _ in range(10):
            try:
                conn.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
                return
            except psycopg.errors.InsufficientPrivilege:
                time.sleep(0.3)


def database_url_for(workdir: Path) -> str:
    """Return a fresh database for one app: an SQLite file, or PostgreSQL for a PostgreSQL run."""
    if SUITE_DATABASE == "postgres":
        return fresh_postgres_database()
    return f"sqlite:///{workdir / 'hookscope.db'}"


def csrf_token(client) -> str:
    """Open the home page as a browser would and read the CSRF token its pages carry."""
    page = client.get("/").text
    return page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


class SqliteLockHolder:
    """Another process hogging an SQLite database: holds its write lock until released.

    In WAL mode readers go on; every write (a capture, a change) waits for the busy timeout and
    fails, as when a backup or a migration holds the file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = path
        self.conn: sqlite3.Connection | None = None

    def hold(self) -> None:
        self.conn = sqlite3.connect(self.path, isolation_level=None)
        self.conn.execute("BEGIN EXCLUSIVE")

    def release(self) -> None:
        if self.conn is not None:
            self.conn.execute("ROLLBACK")
            self.conn.close()
            self.conn = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ReadKeys(AuthBase):
    """Sign API calls with the read key of the bin named in their URL, as its creator would."""

    def __init__(self) -> None:
        self.keys: dict[str, str] = {}

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        marker = "/api/v1/bins/"
        if marker in (r.url or ""):
            bin_id = r.url.split(marker, 1)[1].split("/", 1)[0].split("?", 1)[0]
            if bin_id in self.keys:
                r.headers["Authorization"] = f"Bearer {self.keys[bin_id]}"
        return r


# What each worker logs once it is about to serve (app/runtime/serving.py, post_worker_init).
SERVING = "] serving"


class Gunicorn:
    """One gunicorn master with its production settings (app/runtime/serving.py)."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None, port: int | None = None):
        self.workdir = workdir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"gunicorn-{self.port}.log"
        env = env or {}
        self.env = {
            **os.environ,
            "PORT": str(self.port),
            "HOOKSCOPE_HOST": "127.0.0.1",
            "SECRET_KEY": "test-secret-key",
            # Tests and benchmarks send bursts from one address; test_ratelimits turns them on.
            "HOOKSCOPE_RATE_LIMITS": "false",
            **env,
        }
        if "DATABASE_URL" not in env:
            self.env["DATABASE_URL"] = database_url_for(workdir)
        self.proc: subprocess.Popen | None = None
        # requests.get(..., auth=server.auth) reads a bin this server created as its owner would.
        self.auth = ReadKeys()

    def start(self, timeout: float = 90) -> Gunicorn:
        # 90 s: at a load of 13 on two cores the migrations alone took 24 s.
        # A restart appends to the same log: count only this start's workers.
        served_before = self.log_text().count(SERVING)
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "python:app.runtime.serving",
                "app:create_app()",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        # Every worker, not just the first one up: a load that starts while a worker is still
        # booting lands on the others for good (keep-alive connections stay where accepted).
        workers = int(self.env.get("HOOKSCOPE_WORKERS", "1"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited early:\n{self.log_path.read_text()[-4000:]}")
            try:
                if (
                    self.log_text().count(SERVING) >= served_before + workers
                    and requests.get(self.url + "/healthz", timeout=1).status_code == 200
                ):
                    return self
            # Not up yet, or a worker just booted on a busy machine answering its first request
            # slowly: ask again until the deadline.
            except (requests.ConnectionError, requests.Timeout):
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer in {timeout}s:\n{self.log_text()[-4000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def create_bin(self) -> dict:
        r = requests.post(self.url + "/api/v1/bins", timeout=5)
        r.raise_for_status()
        created = r.json()
        self.auth.keys[created["id"]] = created["read_key"]
        return created

    def __enter__(self) -> Gunicorn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
