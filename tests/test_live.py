"""The live protocol in-process: joining a bin's room and catching up by sequence number."""

from __future__ import annotations

import pytest


def capture(client, bin_id: str, n: int) -> None:
    for i in range(n):
        assert client.post(f"/h/{bin_id}/n{i}", data=str(i)).status_code == 200


def captured_seqs(socket_client) -> list[int]:
    return [e["args"][0]["seq"] for e in socket_client.get_received() if e["name"] == "captured"]


def test_watch_without_after_only_streams_new_captures(client, new_bin, socket_client):
    capture(client, new_bin["id"], 2)
    ack = socket_client.emit("watch", {"bin": new_bin["id"], "after": None}, callback=True)
    assert ack == {"ok": True, "bin": new_bin["id"], "last_seq": 2, "gap": False}
    assert captured_seqs(socket_client) == []
    capture(client, new_bin["id"], 1)
    assert captured_seqs(socket_client) == [3]


def test_watch_after_replays_what_was_missed_oldest_first(client, new_bin, socket_client):
    capture(client, new_bin["id"], 5)
    ack = socket_client.emit("watch", {"bin": new_bin["id"], "after": 2}, callback=True)
    assert ack["ok"] is True and ack["last_seq"] == 5
    assert captured_seqs(socket_client) == [3, 4, 5]
    capture(client, new_bin["id"], 1)
    assert captured_seqs(socket_client) == [6]


def test_replay_is_capped_and_says_there_is_a_gap(app, client, new_bin, socket_client):
    app.config["HOOKSCOPE_REPLAY_LIMIT"] = 3
    capture(client, new_bin["id"], 6)
    ack = socket_client.emit("watch", {"bin": new_bin["id"], "after": 1}, callback=True)
    assert ack["gap"] is True
    assert captured_seqs(socket_client) == [4, 5, 6]


def test_replayed_summaries_match_the_list_api(client, new_bin, socket_client):
    capture(client, new_bin["id"], 2)
    socket_client.emit("watch", {"bin": new_bin["id"], "after": 0}, callback=True)
    replayed = [e["args"][0] for e in socket_client.get_received()]
    listed = client.get(f"/api/v1/bins/{new_bin['id']}/requests").json["requests"]
    assert replayed == list(reversed(listed))


@pytest.mark.parametrize(
    "payload",
    [
        None,
        "abc",
        {},
        {"bin": 5},
        {"bin": "nosuchbin", "after": None},
        {"bin": "BIN", "after": "x"},
        {"bin": "BIN", "after": -1},
        {"bin": "BIN", "after": True},
    ],
)
def test_bad_watch_requests_get_a_clear_refusal(new_bin, socket_client, payload):
    if isinstance(payload, dict) and payload.get("bin") == "BIN":
        payload = {**payload, "bin": new_bin["id"]}
    ack = socket_client.emit("watch", payload, callback=True)
    assert ack["ok"] is False
    assert isinstance(ack["error"], str) and ack["error"]
