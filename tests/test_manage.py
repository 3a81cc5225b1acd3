"""Managing a bin: rename, describe, delete and pin requests, clear, delete; every tab hears it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.domain import clock


def capture(client, bin_id: str, n: int) -> None:
    for i in range(n):
        assert client.post(f"/h/{bin_id}/{i}", data=str(i)).status_code == 200


def seqs(client, bin_id: str) -> list[int]:
    return [r["seq"] for r in client.get(f"/api/v1/bins/{bin_id}/requests").json["requests"]]


@pytest.fixture
def tab(app, client, new_bin):
    """Another open tab of the same browser, watching the bin live."""
    from app.extensions import socketio

    sio = socketio.test_client(app, flask_test_client=client)
    assert sio.emit("watch", {"bin": new_bin["id"], "after": None}, callback=True)["ok"]
    yield sio
    sio.disconnect()


def events(tab) -> list[tuple[str, dict]]:
    return [(e["name"], e["args"][0]) for e in tab.get_received()]


def test_rename_and_describe(client, new_bin, tab):
    response = client.patch(
        f"/api/v1/bins/{new_bin['id']}", json={"name": "Stripe", "description": "staging"}
    )
    assert response.status_code == 200
    assert (response.json["name"], response.json["description"]) == ("Stripe", "staging")
    [(name, body)] = events(tab)
    assert name == "bin_updated" and body["name"] == "Stripe"
    assert client.get(f"/api/v1/bins/{new_bin['id']}").json["name"] == "Stripe"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"name": "x" * 201}, "bad_name"),
        ({"description": 5}, "bad_description"),
        ({"max_requests": 0}, "bad_max_requests"),
        ({"max_requests": 10_001}, "bad_max_requests"),
        ({"expires_after": 10}, "bad_expires_after"),
        ({"expires_after": None}, "bad_expires_after"),
        ({"ingest_auth": {"type": "digest"}}, "bad_ingest_auth"),
        ({"read_key_hash": "x"}, "unknown_field"),
    ],
)
def test_bad_changes_are_refused_with_a_reason(client, new_bin, change, error):
    response = client.patch(f"/api/v1/bins/{new_bin['id']}", json=change)
    assert response.status_code == 400
    assert response.json["error"] == error and response.json["message"]


def test_never_expiring_bins_are_the_operators_choice(app, client, new_bin):
    app.config["HOOKSCOPE_ALLOW_NEVER_EXPIRE"] = True
    response = client.patch(f"/api/v1/bins/{new_bin['id']}", json={"expires_after": None})
    assert response.status_code == 200
    assert response.json["expires_at"] is None


def test_delete_one_request(client, new_bin, tab):
    capture(client, new_bin["id"], 3)
    tab.get_received()
    assert client.delete(f"/api/v1/bins/{new_bin['id']}/requests/2").status_code == 204
    assert seqs(client, new_bin["id"]) == [3, 1]
    assert events(tab) == [("deleted", {"bin": new_bin["id"], "seqs": [2]})]
    assert client.delete(f"/api/v1/bins/{new_bin['id']}/requests/2").status_code == 404
    assert client.get(f"/api/v1/bins/{new_bin['id']}").json["request_count"] == 2


def test_clear_keeps_pinned_unless_asked(client, new_bin, tab):
    capture(client, new_bin["id"], 3)
    assert client.patch(f"/api/v1/bins/{new_bin['id']}/requests/1", json={"pinned": True}).json[
        "pinned"
    ]
    tab.get_received()
    assert client.delete(f"/api/v1/bins/{new_bin['id']}/requests").json == {"deleted": 2}
    assert seqs(client, new_bin["id"]) == [1]
    assert events(tab) == [("cleared", {"bin": new_bin["id"]})]
    cleared = client.delete(f"/api/v1/bins/{new_bin['id']}/requests?include_pinned=true")
    assert cleared.json == {"deleted": 1}
    assert seqs(client, new_bin["id"]) == []
    assert client.get(f"/api/v1/bins/{new_bin['id']}").json["request_count"] == 0


def test_pin_and_unpin(client, new_bin, tab):
    capture(client, new_bin["id"], 1)
    tab.get_received()
    url = f"/api/v1/bins/{new_bin['id']}/requests/1"
    assert client.patch(url, json={"pinned": True}).json["pinned"] is True
    assert client.get(url).json["pinned"] is True
    assert client.patch(url, json={"pinned": False}).json["pinned"] is False
    assert [name for name, _ in events(tab)] == ["pinned", "pinned"]
    assert client.patch(url, json={"pinned": "yes"}).status_code == 400
    assert client.patch(url + "0", json={"pinned": True}).status_code == 404


def test_delete_a_bin(client, new_bin, tab):
    capture(client, new_bin["id"], 2)
    tab.get_received()
    assert client.delete(f"/api/v1/bins/{new_bin['id']}").status_code == 204
    assert events(tab) == [("bin_deleted", {"bin": new_bin["id"]})]
    assert client.get(f"/api/v1/bins/{new_bin['id']}").status_code == 404
    assert client.post(f"/h/{new_bin['id']}", data=b"late").status_code == 404


def test_views_renew_expiry_but_write_at_most_hourly(client, new_bin, monkeypatch):
    first = client.get(f"/api/v1/bins/{new_bin['id']}").json["expires_at"]
    later = clock.now() + timedelta(minutes=30)
    monkeypatch.setattr(clock, "now", lambda: later)
    assert client.get(f"/api/v1/bins/{new_bin['id']}").json["expires_at"] == first
    much_later = clock.now() + timedelta(hours=2)
    monkeypatch.setattr(clock, "now", lambda: much_later)
    renewed = client.get(f"/api/v1/bins/{new_bin['id']}").json["expires_at"]
    assert renewed > first
