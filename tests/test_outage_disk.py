"""The SQLite file's disk full, and its filesystem turned read-only by the kernel, under the real
server: captures answered 503 with Retry-After (never a 500, never a 2xx for what was not
stored), open pages told (their banner), reads still served, and service back after.

Real filesystems: a tmpfs with a size, and an ext4 image loop-mounted with errors=remount-ro
(tests/engines.py; both need root).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import threading

import pytest
import requests
import socketio
from engines import Ext4Image, SmallTmpfs, wait_for
from harness import SUITE_DATABASE, Gunicorn

if SUITE_DATABASE != "sqlite":
    pytest.skip("SQLite's file on a real filesystem: nothing to repeat", allow_module_level=True)

# The disk fills for real here, so no free-space margin may refuse captures first: the default
# HOOKSCOPE_MIN_FREE_DISK_BYTES (512 MiB) is more than these small filesystems hold.
RETRY = {"HOOKSCOPE_RETRY_AFTER_SECONDS": "1", "HOOKSCOPE_MIN_FREE_DISK_BYTES": "0"}


class StorageNews:
    """An open page's live connection: what it hears about storage (its banner's cue)."""

    def __init__(self, server: Gunicorn) -> None:
        self.news: list[dict] = []
        self.lock = threading.Lock()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("storage", self.heard)
        self.sio.connect(server.url, transports=["websocket"], wait_timeout=10)

    def heard(self, news: dict) -> None:
        with self.lock:
            self.news.append(news)

    def said(self, ok: bool) -> bool:
        with self.lock:
            return any(item["ok"] is ok for item in self.news)

    def close(self) -> None:
        self.sio.disconnect()


def capture(bin_: dict, body: bytes) -> requests.Response:
    return requests.post(bin_["capture_url"], data=body, timeout=30)


def stored(server: Gunicorn, bin_: dict) -> dict[int, str]:
    """Every stored request of the bin: seq -> sha256 of its body."""
    url = f"{server.url}/api/v1/bins/{bin_['id']}/requests"
    listed = requests.get(url, params={"limit": 200}, auth=server.auth, timeout=10)
    assert listed.status_code == 200
    out = {}
    for summary in listed.json()["requests"]:
        detail = requests.get(f"{url}/{summary['seq']}", auth=server.auth, timeout=10).json()
        out[summary["seq"]] = detail["body"]["sha256"]
    return out


def acknowledged(answers: list[tuple[bytes, requests.Response]]) -> dict[int, str]:
    return {
        int(r.headers["X-Hookscope-Seq"]): hashlib.sha256(body).hexdigest()
        for body, r in answers
        if r.status_code == 200
    }


def no_server_errors(server: Gunicorn) -> None:
    log = server.log_text()
    assert "Traceback" not in log, log[-4000:]
    assert not re.search(r'" 500 \d|status=500', log), log[-4000:]


@pytest.fixture
def full_disk(tmp_path):
    disk = SmallTmpfs(tmp_path / "disk", 16 * 1024 * 1024).mount()
    yield disk
    disk.unmount()


def test_a_full_disk_refuses_captures_with_503_and_service_resumes_when_there_is_room(
    tmp_path, full_disk
):
    env = {"DATABASE_URL": f"sqlite:///{full_disk.path}/hookscope.db", **RETRY}
    server = Gunicorn(tmp_path, env=env).start()
    page = None
    try:
        bin_ = server.create_bin()
        answers = [(b"before %d" % i, capture(bin_, b"before %d" % i)) for i in range(3)]
        assert [r.status_code for _, r in answers] == [200] * 3
        page = StorageNews(server)

        assert full_disk.fill() > 0
        big = b"a body with no room left for it " * 32768  # 1 MiB
        refused = capture(bin_, big)
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "1"
        assert "nothing was stored" in refused.text
        wait_for(lambda: page.said(False), 15, "open pages told that storage failed")
        # Small captures may still fit in the pages SQLite has: stored (2xx) or refused (503).
        small = [(b"small %d" % i, capture(bin_, b"small %d" % i)) for i in range(5)]
        assert {r.status_code for _, r in small} <= {200, 503}
        answers += small
        # Reading goes on.
        assert requests.get(server.url + "/", timeout=10).status_code == 200
        assert set(stored(server, bin_)) == set(acknowledged(answers))

        full_disk.free()
        after = capture(bin_, big)
        assert after.status_code == 200
        answers.append((big, after))
        wait_for(lambda: page.said(True), 15, "open pages told that storage is back")
        assert requests.get(server.url + "/readyz", timeout=10).status_code == 200
        # Every 2xx stored, byte for byte; nothing refused was.
        assert stored(server, bin_) == acknowledged(answers)
    finally:
        if page is not None:
            page.close()
        server.stop()
    no_server_errors(server)


@pytest.fixture
def ext4(tmp_path):
    disk = Ext4Image(tmp_path / "ext4", tmp_path / "ext4.img").create()
    yield disk
    disk.remove()


def test_a_filesystem_turned_read_only_refuses_captures_and_serves_again_after_a_repair(
    tmp_path, ext4
):
    env = {"DATABASE_URL": f"sqlite:///{ext4.path}/hookscope.db", **RETRY}
    server = Gunicorn(tmp_path, env=env).start()
    page = None
    try:
        bin_ = server.create_bin()
        answers = [(b"before %d" % i, capture(bin_, b"before %d" % i)) for i in range(3)]
        assert [r.status_code for _, r in answers] == [200] * 3
        page = StorageNews(server)
        # What reached the disk before it failed. (Commits not yet written out when a disk
        # fails can be lost, as in an OS crash: SQLite's WAL is fsynced at checkpoints.)
        subprocess.run(["sync"], check=True)

        ext4.fail()
        assert "ro" in ext4.options().split(",") or "emergency_ro" in ext4.options()
        during = [capture(bin_, b"during %d" % i) for i in range(3)]
        assert [r.status_code for r in during] == [503] * 3
        assert all(r.headers["Retry-After"] == "1" for r in during)
        wait_for(lambda: page.said(False), 15, "open pages told that storage failed")
        ready = requests.get(server.url + "/readyz", timeout=10)
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] == {
            "ok": False,
            "error": "OperationalError: attempt to write a readonly database",
        }
        assert requests.get(server.url + "/healthz", timeout=10).status_code == 200
        # A read-only database still reads.
        assert stored(server, bin_) == acknowledged(answers)
    finally:
        if page is not None:
            page.close()
        # The kernel lets no one make it writable while files are open on it: the server lets
        # go of them, the operator repairs the filesystem, the server starts again.
        server.stop()
    no_server_errors(server)

    ext4.repair()
    again = Gunicorn(tmp_path / "again", env=env, port=server.port)
    again.workdir.mkdir()
    again.auth = server.auth
    with again:
        after = capture(bin_, b"after the repair")
        assert after.status_code == 200
        answers.append((b"after the repair", after))
        assert stored(again, bin_) == acknowledged(answers)
    no_server_errors(again)
