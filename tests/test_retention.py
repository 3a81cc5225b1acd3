"""Bins stay bounded: a request limit that never refuses a capture, and expiry with pruning."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import requests
from harness import Gunicorn

from app.domain import clock
from app.store import bins


def seqs(client, bin_id: str) -> list[int]:
    page = client.get(f"/api/v1/bins/{bin_id}/requests?limit=200").json
    return [r["seq"] for r in page["requests"]]


def test_the_oldest_unpinned_requests_make_room(client, new_bin):
    bin_id = new_bin["id"]
    client.patch(f"/api/v1/bins/{bin_id}", json={"max_requests": 3})
    for i in range(3):
        client.post(f"/h/{bin_id}", data=str(i))
    client.patch(f"/api/v1/bins/{bin_id}/requests/1", json={"pinned": True})
    for i in range(3):
        assert client.post(f"/h/{bin_id}", data=str(i)).status_code == 200
    # 1 is pinned; 2, 3, 4 went to make room for 5 and 6.
    assert seqs(client, bin_id) == [6, 5, 1]
    assert client.get(f"/api/v1/bins/{bin_id}").json["request_count"] == 3


def test_retention_never_drops_the_new_capture_even_when_all_else_is_pinned(client, new_bin):
    bin_id = new_bin["id"]
    client.patch(f"/api/v1/bins/{bin_id}", json={"max_requests": 2})
    for seq in (1, 2):
        client.post(f"/h/{bin_id}", data=b"x")
        client.patch(f"/api/v1/bins/{bin_id}/requests/{seq}", json={"pinned": True})
    assert client.post(f"/h/{bin_id}", data=b"new").status_code == 200
    assert seqs(client, bin_id) == [3, 2, 1]
    client.post(f"/h/{bin_id}", data=b"newer")
    assert seqs(client, bin_id) == [4, 2, 1]


def test_retention_announces_what_it_dropped(app, client, new_bin):
    from app.extensions import socketio

    client.patch(f"/api/v1/bins/{new_bin['id']}", json={"max_requests": 1})
    sio = socketio.test_client(app, flask_test_client=client)
    sio.emit("watch", {"bin": new_bin["id"], "after": None}, callback=True)
    client.post(f"/h/{new_bin['id']}", data=b"1")
    client.post(f"/h/{new_bin['id']}", data=b"2")
    names = [(e["name"], e["args"][0].get("seqs")) for e in sio.get_received()]
    sio.disconnect()
    assert names == [("captured", None), ("captured", None), ("deleted", [1])]


def test_eight_concurrent_senders_never_exceed_the_limit_nor_lose_a_pin(tmp_path):
    limit, sends = 20, 400
    with Gunicorn(tmp_path, env={"HOOKSCOPE_WORKERS": "2"}) as server:
        bin_ = server.create_bin()
        api = f"{server.url}/api/v1/bins/{bin_['id']}"
        assert requests.patch(api, json={"max_requests": limit}, auth=server.auth).ok
        for _ in range(3):
            requests.post(bin_["capture_url"], data=b"keep", timeout=10)
        for seq in (1, 3):
            pinned = requests.patch(
                f"{api}/requests/{seq}", json={"pinned": True}, auth=server.auth
            )
            assert pinned.json()["pinned"] is True

        def send(i: int) -> int:
            return requests.post(bin_["capture_url"], data=b"%d" % i, timeout=30).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(send, range(sends)))
        page = requests.get(f"{api}/requests?limit=200", auth=server.auth, timeout=10).json()
        stored = [r["seq"] for r in page["requests"]]
        count = requests.get(api, auth=server.auth, timeout=10).json()["request_count"]
        log = server.log_text()
    assert statuses == [200] * sends
    assert len(stored) == count == limit
    assert {1, 3} <= set(stored)
    # Besides the pins, exactly the newest captures remain.
    newest = 3 + sends
    assert sorted(set(stored) - {1, 3}, reverse=True) == list(range(newest, newest - limit + 2, -1))
    assert "database is locked" not in log and "Traceback" not in log


def test_bins_expire_after_inactivity_and_captures_renew_them(app, client, new_bin, monkeypatch):
    start = clock.now()
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(days=6))
    with app.app_context():
        assert bins.prune() == []
    # A capture on day 6 pushes expiry to day 13.
    response = client.post(f"/h/{new_bin['id']}", data=b"keep me")
    assert response.status_code == 200
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(days=8))
    with app.app_context():
        assert bins.prune() == []
    assert client.get(f"/api/v1/bins/{new_bin['id']}").status_code == 200


def test_prune_removes_expired_bins_with_everything_in_them(app, client, new_bin):
    client.post(f"/h/{new_bin['id']}", data=b"x")
    other = client.post("/api/v1/bins").json
    later = clock.now() + timedelta(days=8)
    with app.app_context():
        assert sorted(bins.prune(later)) == sorted([new_bin["id"], other["id"]])
    assert client.get(f"/api/v1/bins/{new_bin['id']}").status_code == 404
    assert client.post(f"/h/{new_bin['id']}").status_code == 404


def test_the_prune_command(runner, client, new_bin, monkeypatch):
    assert runner.invoke(args=["prune"]).output == "pruned 0 expired bin(s)\n"
    client.patch(f"/api/v1/bins/{new_bin['id']}", json={"expires_after": 60})
    later = clock.now() + timedelta(minutes=2)
    monkeypatch.setattr(clock, "now", lambda: later)
    result = runner.invoke(args=["prune"])
    assert result.output == f"pruned 1 expired bin(s)\n  {new_bin['id']}\n"


def test_the_servers_janitor_prunes_and_tells_open_pages(app, client, new_bin, monkeypatch):
    from app.extensions import socketio
    from app.runtime import janitor

    sio = socketio.test_client(app, flask_test_client=client)
    sio.emit("watch", {"bin": new_bin["id"], "after": None}, callback=True)
    later = clock.now() + timedelta(days=8)
    monkeypatch.setattr(clock, "now", lambda: later)
    assert janitor.prune_once(app) == [new_bin["id"]]
    assert [e["name"] for e in sio.get_received()] == ["bin_deleted"]
    sio.disconnect()
