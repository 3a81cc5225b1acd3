"""Clearing, deleting or pruning a big bin while another bin's captures keep arriving.

A bulk delete is done in bounded batches, each a short transaction taken in the writer's order,
with captures' batches in between: a capture never waits for the whole deletion. The test sends
captures one after another while the deletion runs, and after each one reads the big bin's
request count straight from the database: captures answered while the count was part-way down
were answered during the deletion, not after it. What is asserted is that order and the
outcome (every capture stored, the big bin empty or gone, the search index holding exactly the
stored requests), never how long anything took.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from harness import Gunicorn
from sqlalchemy import text, update
from test_search import indexed_ids, stored_ids

from app import create_app
from app.domain.capture import Snapshot
from app.domain.models import Bin
from app.extensions import db
from app.store.batch import Pending, headers_json
from app.store.recorder import writer_for

REQUESTS = 20_000
# Captures answered while the big bin was part-way through its deletion, at the least. Deleting
# 20,000 requests in one statement let none through: the count went from 20,000 to gone at once.
DURING = 5
WORDS = "invoice charge refund payout customer webhook order shipment ledger account".split()


@pytest.fixture
def roomy(tmp_path):
    """A server whose bins may keep 20,000 requests, pruning every second."""
    env = {"HOOKSCOPE_MAX_REQUESTS_CEILING": str(REQUESTS), "HOOKSCOPE_PRUNE_INTERVAL_SECONDS": "1"}
    with Gunicorn(tmp_path, env=env) as running:
        yield running


@pytest.fixture
def app_on(roomy):
    """The app in this process on the server's database, to fill it and look into it."""
    app = create_app(
        {
            "SECRET_KEY": "test",
            "SQLALCHEMY_DATABASE_URI": roomy.env["DATABASE_URL"],
            "RATELIMIT_ENABLED": False,
        }
    )
    yield app
    with app.app_context():
        db.engine.dispose()


def snapshot(n: int) -> Snapshot:
    rng = random.Random(n)
    body = " ".join(rng.choice(WORDS) + str(rng.randrange(1000)) for _ in range(40)).encode()
    return Snapshot(
        method="POST",
        path=f"/bulk/{n}",
        query_string=f"n={n}",
        headers=[["Content-Type", "text/plain"], ["X-Bulk", str(n)]],
        content_type="text/plain",
        body=body,
        remote_addr="127.0.0.1",
        url=f"http://127.0.0.1/bulk/{n}",
        http_version="HTTP/1.1",
        received_at=datetime.now(UTC),
    )


def fill(app, bin_id: str, count: int) -> None:
    """Store ``count`` requests through the capture writer, in batches, and index them."""
    with app.app_context():
        writer = writer_for(db.engine, 30_000)
        for start in range(0, count, 500):
            items = [snapshot(n) for n in range(start, min(start + 500, count))]
            batch = [Pending(bin_id, s, None, headers_json(s.headers)) for s in items]
            conn = writer.checkout()
            try:
                writer.write(conn, batch)
            finally:
                conn.close()
        if writer.sqlite:
            while writer.index():
                pass


def request_count(app, bin_id: str) -> int | None:
    """The bin's request count as committed, or None once the bin is gone."""
    with app.app_context():
        found = db.session.execute(
            text("SELECT request_count FROM bins WHERE id = :id"), {"id": bin_id}
        ).scalar()
        db.session.rollback()
    return found


def big_bin(server, app) -> dict:
    bin_ = server.create_bin()
    changed = requests.patch(
        f"{server.url}/api/v1/bins/{bin_['id']}",
        json={"max_requests": REQUESTS},
        auth=server.auth,
        timeout=10,
    )
    assert changed.status_code == 200, changed.text
    fill(app, bin_["id"], REQUESTS)
    assert request_count(app, bin_["id"]) == REQUESTS
    return bin_


class Captures:
    """Send captures to a bin one after another until told to stop; after each, note the big
    bin's request count as the database has it."""

    def __init__(self, server, app, bin_: dict, big_id: str) -> None:
        self.server, self.app, self.bin, self.big_id = server, app, bin_, big_id
        self.answers: list[tuple[int, str, int | None]] = []  # (status, seq, big bin's count)

    def run_until(self, done: threading.Event) -> None:
        n = 0
        while not done.is_set():
            answer = requests.post(f"{self.bin['capture_url']}/during/{n}", data=str(n), timeout=60)
            seq = answer.headers.get("X-Hookscope-Seq", "")
            self.answers.append((answer.status_code, seq, request_count(self.app, self.big_id)))
            n += 1

    def during(self) -> int:
        """How many captures were answered while the big bin was part-way through going."""
        return sum(1 for _, _, count in self.answers if count is not None and 0 < count < REQUESTS)

    def check_stored(self) -> None:
        assert [status for status, _, _ in self.answers] == [200] * len(self.answers)
        seqs = [int(seq) for _, seq, _ in self.answers]
        assert seqs == list(range(1, len(seqs) + 1)), "answered in the order sent, none lost"
        listed = requests.get(
            f"{self.server.url}/api/v1/bins/{self.bin['id']}/requests?limit=200",
            auth=self.server.auth,
            timeout=10,
        ).json()
        assert len(listed["requests"]) == min(len(seqs), 200)


def run_while_capturing(server, app, big: dict, deletion) -> tuple[Captures, object]:
    """Run ``deletion()`` in a thread while captures go to another bin; return both outcomes."""
    other = server.create_bin()
    captures = Captures(server, app, other, big["id"])
    done = threading.Event()
    outcome: list[object] = []

    def delete() -> None:
        try:
            outcome.append(deletion())
        finally:
            done.set()

    thread = threading.Thread(target=delete)
    started = time.monotonic()
    thread.start()
    captures.run_until(done)
    thread.join()
    print(
        f"\n{len(captures.answers)} captures in {time.monotonic() - started:.1f} s,"
        f" {captures.during()} of them during the deletion"
    )
    return captures, outcome[0]


def test_clearing_a_big_bin_lets_other_captures_through(roomy, app_on):
    server = roomy
    big = big_bin(server, app_on)

    def clear() -> requests.Response:
        return requests.delete(
            f"{server.url}/api/v1/bins/{big['id']}/requests", auth=server.auth, timeout=300
        )

    captures, cleared = run_while_capturing(server, app_on, big, clear)
    assert cleared.status_code == 200
    assert cleared.json() == {"deleted": REQUESTS}
    assert captures.during() >= DURING
    captures.check_stored()
    assert request_count(app_on, big["id"]) == 0
    assert indexed_ids(app_on) == stored_ids(app_on)


def test_deleting_a_big_bin_lets_other_captures_through(roomy, app_on):
    server = roomy
    big = big_bin(server, app_on)

    def delete() -> requests.Response:
        return requests.delete(
            f"{server.url}/api/v1/bins/{big['id']}", auth=server.auth, timeout=300
        )

    captures, deleted = run_while_capturing(server, app_on, big, delete)
    assert deleted.status_code == 204
    assert captures.during() >= DURING
    captures.check_stored()
    assert request_count(app_on, big["id"]) is None
    assert indexed_ids(app_on) == stored_ids(app_on)
    with app_on.app_context():
        left = db.session.execute(
            text("SELECT count(*) FROM requests WHERE bin_id = :id"), {"id": big["id"]}
        ).scalar()
    assert left == 0


def test_pruning_a_big_bin_lets_other_captures_through(roomy, app_on):
    server = roomy
    """The server's own pruning (every HOOKSCOPE_PRUNE_INTERVAL_SECONDS, 1 s here)."""
    big = big_bin(server, app_on)

    def expire_and_wait() -> None:
        with app_on.app_context():
            past = datetime.now(UTC) - timedelta(minutes=1)
            db.session.execute(update(Bin).where(Bin.id == big["id"]).values(expires_at=past))
            db.session.commit()
        for _ in range(6000):
            if request_count(app_on, big["id"]) is None:
                return
            threading.Event().wait(0.01)
        raise AssertionError("the expired bin was never pruned")

    captures, _ = run_while_capturing(server, app_on, big, expire_and_wait)
    assert captures.during() >= DURING
    captures.check_stored()
    assert indexed_ids(app_on) == stored_ids(app_on)
    gone = requests.get(f"{server.url}/api/v1/bins/{big['id']}", auth=server.auth, timeout=10)
    assert gone.status_code == 404
