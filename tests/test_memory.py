"""The worker's memory around big bodies, under real gunicorn (app/runtime/serving.py).

A 25 MiB body is held while it is read and stored, and must be given back afterwards: a worker
that keeps each big capture's memory grows to its highest and stays there.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import requests
from harness import Gunicorn

MIB = 1024 * 1024
BODY = 25 * MIB  # GitHub's largest webhook payload


def worker_rss_kib(server: Gunicorn) -> int:
    (pid,) = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text().split()
    return int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1))


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("big-bodies")
    # Room for every body this module sends in one bin (the default budget keeps four).
    env = {"HOOKSCOPE_MAX_BODY_BYTES": str(BODY), "HOOKSCOPE_BIN_MAX_BYTES": str(40 * BODY)}
    with Gunicorn(workdir, env=env) as running:
        yield running


def settled_rss_kib(server: Gunicorn) -> int:
    """The worker's RSS once it has stopped changing (the writer and indexer have finished)."""
    last = worker_rss_kib(server)
    for _ in range(40):
        time.sleep(0.1)
        now = worker_rss_kib(server)
        if abs(now - last) < 256:
            return now
        last = now
    return last


def test_big_bodies_memory_is_given_back_once_they_are_stored(big):
    bin_ = big.create_bin()
    for _ in range(3):  # warm up: imports, the pool's connections, SQLite's page cache
        requests.post(bin_["capture_url"], data=b'{"warm": true}', timeout=10).raise_for_status()
    before = settled_rss_kib(big)

    for i in range(5):
        body = bytes([65 + i]) * BODY
        answer = requests.post(bin_["capture_url"], data=body, timeout=60)
        assert answer.status_code == 200, answer.text
        del body
    kept_mib = (settled_rss_kib(big) - before) / 1024

    # Five bodies of 25 MiB went through; with glibc's adaptive threshold the worker kept about
    # two of them (52 MiB) for good. Now it keeps what a few small captures would.
    assert kept_mib < 8, f"the worker kept {kept_mib:.1f} MiB after five 25 MiB captures"
    listed = requests.get(f"{big.url}/api/v1/bins/{bin_['id']}/requests", auth=big.auth, timeout=10)
    assert [r["body_size"] for r in listed.json()["requests"][:5]] == [BODY] * 5
