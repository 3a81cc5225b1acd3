"""Many senders at once, against several gunicorn workers sharing one SQLite file."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from harness import Gunicorn

SENDS = 200
THREADS = 32


@pytest.fixture
def four_workers(tmp_path):
    with Gunicorn(tmp_path, env={"HOOKSCOPE_WORKERS": "4"}) as running:
        yield running


def get_json(server, path: str, **params: int) -> dict:
    response = requests.get(server.url + path, params=params, auth=server.auth, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def stored_bodies(server, bin_id: str) -> dict[int, str]:
    """Map every stored seq of a bin to its body's sha256, paging through the list API."""
    seqs: list[int] = []
    page = {"next_before": 0}
    while page["next_before"] is not None:
        before = {"before": page["next_before"]} if page["next_before"] else {}
        page = get_json(server, f"/api/v1/bins/{bin_id}/requests", limit=200, **before)
        seqs += [summary["seq"] for summary in page["requests"]]
    detail = f"/api/v1/bins/{bin_id}/requests/"
    return {seq: get_json(server, detail + str(seq))["body"]["sha256"] for seq in seqs}


def test_a_burst_across_workers_stores_every_body_once_in_order(four_workers):
    bins = [four_workers.create_bin(), four_workers.create_bin()]
    sends = [(bins[i % 2], b"%d:" % i + os.urandom(64)) for i in range(SENDS)]

    def send(item: tuple[dict, bytes]) -> tuple[str, int, str]:
        bin_, body = item
        response = requests.post(bin_["capture_url"], data=body, timeout=30)
        return bin_["id"], response.status_code, response.headers.get("X-Hookscope-Seq", "")

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        answers = list(pool.map(send, sends))

    assert [status for _, status, _ in answers] == [200] * SENDS
    log = four_workers.log_text()
    assert log.count("Booting worker") == 4
    assert "database is locked" not in log
    assert "Traceback" not in log
    for bin_ in bins:
        sent = {hashlib.sha256(body).hexdigest() for b, body in sends if b is bin_}
        stored = stored_bodies(four_workers, bin_["id"])
        answered = sorted(int(seq) for bin_id, _, seq in answers if bin_id == bin_["id"])
        assert sorted(stored) == answered == list(range(1, SENDS // 2 + 1))
        assert sorted(stored.values()) == sorted(sent)
