"""No acknowledged capture is ever lost, even when gunicorn is killed outright mid-burst."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from harness import Gunicorn

CAPTURES = 2000
CONCURRENCY = 64
KILL_AFTER = 800


@dataclass
class Sent:
    body: bytes
    status: int | None = None
    seq: int | None = None
    error: str | None = None


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def kill_now(server: Gunicorn) -> list[int]:
    """SIGKILL the master, then its workers: no shutdown, no flush, no goodbye."""
    master = server.proc.pid
    workers = children(master)
    assert workers, "the master has no worker to kill"
    os.kill(master, signal.SIGKILL)
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    server.proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    for pid in workers:
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            status = Path(f"/proc/{pid}/status").read_text()
            if "State:\tZ" in status:  # dead, waiting for init to reap it
                break
            time.sleep(0.02)
    return [master, *workers]


_local = threading.local()


def session() -> requests.Session:
    """One keep-alive session per sending thread: the client's own overhead stays small."""
    if not hasattr(_local, "session"):
        _local.session = requests.Session()
        _sessions.append(_local.session)
    return _local.session


_sessions: list[requests.Session] = []


def close_sessions() -> None:
    while _sessions:
        _sessions.pop().close()


def stored(server: Gunicorn, bin_id: str, seq: int) -> dict | None:
    response = session().get(
        f"{server.url}/api/v1/bins/{bin_id}/requests/{seq}", auth=server.auth, timeout=10
    )
    return response.json() if response.status_code == 200 else None


# Connections the kill severed mid-request are dropped by urllib3 without close(); their sockets
# are collected later, outside any session this test can close.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_every_acknowledged_capture_survives_sigkill(tmp_path):
    first = Gunicorn(tmp_path)
    first.start()
    try:
        created = requests.post(
            first.url + "/api/v1/bins", json={"max_requests": 10_000}, timeout=5
        ).json()
        first.auth.keys[created["id"]] = created["read_key"]
        url = created["capture_url"]

        sent = [Sent(b"capture %d " % i + os.urandom(64)) for i in range(CAPTURES)]
        answered = 0
        lock = threading.Lock()
        enough = threading.Event()

        def send(item: Sent) -> None:
            nonlocal answered
            try:
                response = session().post(url, data=item.body, timeout=10)
            except requests.RequestException as err:
                item.error = type(err).__name__
                return
            item.status = response.status_code
            if response.ok:
                item.seq = int(response.headers["X-Hookscope-Seq"])
                with lock:
                    answered += 1
                    if answered >= KILL_AFTER:
                        enough.set()

        with ThreadPoolExecutor(CONCURRENCY) as pool:
            futures = [pool.submit(send, item) for item in sent]
            assert enough.wait(timeout=60), f"only {answered} answers before the kill"
            killed = kill_now(first)
            for future in futures:
                future.result()
    finally:
        close_sessions()
        first.stop()

    acknowledged = [item for item in sent if item.status is not None and 200 <= item.status < 300]
    failed = [item for item in sent if item.error]
    other = [item for item in sent if item.status is not None and not 200 <= item.status < 300]
    print(
        f"\nkilled {killed} after {KILL_AFTER} answers: {len(acknowledged)} acknowledged, "
        f"{len(failed)} failed in flight or after, {len(other)} other statuses"
    )
    assert KILL_AFTER <= len(acknowledged) < CAPTURES
    assert other == []
    # One seq per acknowledged capture: no two senders were told the same number.
    assert len({item.seq for item in acknowledged}) == len(acknowledged)

    second = Gunicorn(tmp_path, env={"DATABASE_URL": first.env["DATABASE_URL"]}, port=first.port)
    second.auth = first.auth
    with second:
        try:
            with ThreadPoolExecutor(8) as pool:
                found = list(
                    pool.map(lambda item: stored(second, created["id"], item.seq), acknowledged)
                )
        finally:
            close_sessions()
        missing = [item.seq for item, info in zip(acknowledged, found, strict=True) if not info]
        assert missing == [], f"{len(missing)} acknowledged captures lost: seqs {missing[:20]}"
        wrong = [
            item.seq
            for item, info in zip(acknowledged, found, strict=True)
            if info["body"]["sha256"] != hashlib.sha256(item.body).hexdigest()
        ]
        assert wrong == [], f"stored bodies differ from what was sent: seqs {wrong[:20]}"

        # And it works normally after the restart: the next capture gets the next number.
        last_seq = requests.get(
            f"{second.url}/api/v1/bins/{created['id']}", auth=second.auth, timeout=5
        ).json()["last_seq"]
        assert last_seq >= max(item.seq for item in acknowledged)
        response = requests.post(url, data=b"after the restart", timeout=5)
        assert response.status_code == 200
        assert int(response.headers["X-Hookscope-Seq"]) == last_seq + 1
        info = stored(second, created["id"], last_seq + 1)
        assert info["body"]["sha256"] == hashlib.sha256(b"after the restart").hexdigest()
