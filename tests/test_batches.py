"""The group-commit writer: one transaction stores a whole batch of captures, for several bins at
once, exactly as if each had been stored on its own (the gevent server batches; tests don't)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain import clock
from app.domain.capture import Snapshot
from app.extensions import db
from app.store import batch as batches
from app.store.postgres import PIPELINE_BATCH_BYTES
from app.store.recorder import writer_for

BIG = PIPELINE_BATCH_BYTES // 2 + 1  # three of these make a batch sent statement by statement


def pending(bin_id: str, body: bytes, authorization: str | None = None) -> batches.Pending:
    snap = Snapshot(
        method="POST",
        path=f"/h/{bin_id}",
        query_string="",
        headers=[["Content-Type", "text/plain"]],
        content_type="text/plain",
        body=body,
        remote_addr="127.0.0.1",
        url=f"http://localhost/h/{bin_id}",
        http_version="HTTP/1.1",
        received_at=clock.now(),
    )
    return batches.Pending(bin_id, snap, authorization, json.dumps(snap.headers))


def write(app, batch: list[batches.Pending]) -> None:
    with app.app_context():
        store = writer_for(db.engine, 30_000)
        conn = store.checkout()
        try:
            store.write(conn, batch)
        finally:
            conn.close()


@pytest.mark.parametrize("size", [16, BIG], ids=["small", "big"])
def test_one_batch_for_several_bins_numbers_judges_and_trims_each(app, client, size):
    limited = client.post("/api/v1/bins", json={"max_requests": 3}).json["id"]
    protected = client.post(
        "/api/v1/bins", json={"ingest_auth": {"type": "bearer", "token": "tok"}}
    ).json["id"]
    for _ in range(2):
        assert client.post(f"/h/{limited}", data=b"before").status_code == 200
    client.patch(f"/api/v1/bins/{limited}/requests/1", json={"pinned": True})

    bodies = [b"%d findme " % i + b"z" * size for i in range(5)]
    batch = [
        pending(limited, bodies[0]),
        pending(protected, b"let in", "Bearer tok"),
        pending(limited, bodies[1]),
        pending("no-such-bin", b"lost"),
        pending(limited, bodies[2]),
        pending(protected, b"turned away"),
        pending(limited, bodies[3]),
        pending(limited, bodies[4]),
    ]
    write(app, batch)

    results = [item.result for item in batch]
    assert results[3] is None  # the bin does not exist: answered 404
    assert [r.summary["seq"] for r in results if r and r.summary["bin"] == limited] == [
        3,
        4,
        5,
        6,
        7,
    ]
    assert [(r.summary["seq"], r.allowed) for r in (results[1], results[5])] == [
        (1, True),
        (2, False),
    ]
    # Retention ran once, after the inserts: the burst dropped its own oldest, never the newest,
    # and the bin's last capture carries what went.
    assert results[-1].dropped == [2, 3, 4, 5]
    assert all(not r.dropped for r in results[:-1] if r)

    listed = client.get(f"/api/v1/bins/{limited}/requests").json["requests"]
    assert [r["seq"] for r in listed] == [7, 6, 1]
    assert client.get(f"/api/v1/bins/{limited}").json["request_count"] == 3
    assert client.get(f"/api/v1/bins/{limited}/requests/6/raw").data == bodies[3]
    assert client.get(f"/api/v1/bins/{limited}/requests/7/raw").data == bodies[4]
    found = client.get(f"/api/v1/bins/{limited}/requests", query_string={"q": "findme"}).json
    assert [r["seq"] for r in found["requests"]] == [7, 6]
    shown = client.get(f"/api/v1/bins/{protected}/requests").json["requests"]
    assert [(r["seq"], r["status"], r["rejected"]) for r in shown] == [
        (2, 401, True),
        (1, 200, False),
    ]


def test_a_batch_renews_the_expiry_of_the_bins_it_stores_into(app, client, monkeypatch):
    bin_id = client.post("/api/v1/bins", json={"expires_after": 3600}).json["id"]
    before = client.get(f"/api/v1/bins/{bin_id}").json["expires_at"]
    later = clock.now() + timedelta(minutes=30)
    monkeypatch.setattr(clock, "now", lambda: later)
    write(app, [pending(bin_id, b"a"), pending(bin_id, b"b")])
    after = client.get(f"/api/v1/bins/{bin_id}").json["expires_at"]
    assert after > before
    assert after.startswith((later + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))


@given(st.lists(st.tuples(st.text(), st.text()).map(list), max_size=30))
def test_stored_headers_are_json_dumps_of_them(headers):
    assert batches.headers_json(headers) == json.dumps(headers)


@pytest.mark.parametrize(
    "headers",
    [[], [["X-Lone", "\ud800 surrogate"]], [["Q", '"\\\n\t\x00\x7f\xe9\u2028']], [["", ""]]],
)
def test_stored_headers_are_json_dumps_of_odd_ones(headers):
    assert batches.headers_json(headers) == json.dumps(headers)
    assert json.loads(batches.headers_json(headers)) == headers
