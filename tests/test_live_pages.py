"""The live protocol's bounds, in-process: a catch-up in acknowledged pages, watches per connection
and per minute, and summaries that never carry a whole 64 KiB path."""

from __future__ import annotations

import time

import pytest

from app.extensions import socketio


def capture(client, bin_id: str, n: int, path: str = "n") -> None:
    for i in range(n):
        assert client.post(f"/h/{bin_id}/{path}{i}", data=str(i)).status_code == 200


def captured_seqs(socket_client) -> list[int]:
    return [e["args"][0]["seq"] for e in socket_client.get_received() if e["name"] == "captured"]


@pytest.fixture
def pages_of_three(app):
    app.config["HOOKSCOPE_REPLAY_PAGE"] = 3


def test_a_paged_catch_up_comes_a_page_per_ask(client, new_bin, socket_client, pages_of_three):
    bin_id = new_bin["id"]
    capture(client, bin_id, 7)
    ack = socket_client.emit("watch", {"bin": bin_id, "after": 0, "paged": True}, callback=True)
    assert ack == {
        "ok": True, "bin": bin_id, "last_seq": 7, "gap": False, "more": True, "through": 3,
    }  # fmt: skip
    assert captured_seqs(socket_client) == [1, 2, 3]

    ack = socket_client.emit("replay", {"bin": bin_id}, callback=True)
    assert ack == {"ok": True, "bin": bin_id, "more": True, "through": 6}
    assert captured_seqs(socket_client) == [4, 5, 6]
    ack = socket_client.emit("replay", {"bin": bin_id}, callback=True)
    assert ack == {"ok": True, "bin": bin_id, "more": False, "through": 7}
    assert captured_seqs(socket_client) == [7]

    # The catch-up is over: nothing more to ask for, and new captures come live.
    ack = socket_client.emit("replay", {"bin": bin_id}, callback=True)
    assert ack["ok"] is False and ack["code"] == "no_replay"
    capture(client, bin_id, 1, "live")
    assert captured_seqs(socket_client) == [8]


def test_a_paged_catch_up_stops_at_what_the_bin_held_when_watched(
    client, new_bin, socket_client, pages_of_three
):
    """Captures arriving during a catch-up come live; the pages do not chase them."""
    bin_id = new_bin["id"]
    capture(client, bin_id, 4)
    socket_client.emit("watch", {"bin": bin_id, "after": 0, "paged": True}, callback=True)
    capture(client, bin_id, 3, "meanwhile")
    assert captured_seqs(socket_client) == [1, 2, 3, 5, 6, 7]
    ack = socket_client.emit("replay", {"bin": bin_id}, callback=True)
    assert ack == {"ok": True, "bin": bin_id, "more": False, "through": 4}
    assert captured_seqs(socket_client) == [4]


def test_more_missed_than_the_replay_limit_says_gap_and_pages_the_newest(
    app, client, new_bin, socket_client, pages_of_three
):
    app.config["HOOKSCOPE_REPLAY_LIMIT"] = 5
    bin_id = new_bin["id"]
    capture(client, bin_id, 8)
    ack = socket_client.emit("watch", {"bin": bin_id, "after": 1, "paged": True}, callback=True)
    assert (ack["gap"], ack["more"], ack["through"]) == (True, True, 6)
    ack = socket_client.emit("replay", {"bin": bin_id}, callback=True)
    assert (ack["more"], ack["through"]) == (False, 8)
    assert captured_seqs(socket_client) == [4, 5, 6, 7, 8]


def test_a_client_that_does_not_page_gets_the_newest_page_and_a_gap(
    client, new_bin, socket_client, pages_of_three
):
    """What clients written before pages handle already: reload the list on a gap."""
    bin_id = new_bin["id"]
    capture(client, bin_id, 7)
    ack = socket_client.emit("watch", {"bin": bin_id, "after": 0}, callback=True)
    assert ack == {"ok": True, "bin": bin_id, "last_seq": 7, "gap": True}
    assert captured_seqs(socket_client) == [5, 6, 7]
    ack = socket_client.emit("replay", {"bin": bin_id}, callback=True)
    assert ack["ok"] is False


def test_a_connection_watches_a_few_bins_at_most(app, client, socket_client):
    app.config["HOOKSCOPE_WATCHES_PER_SOCKET"] = 2
    made = [client.post("/api/v1/bins").json for _ in range(3)]
    watches = [{"bin": b["id"], "key": b["read_key"], "after": None} for b in made]
    for watch in [*watches[:2], watches[0]]:  # watching a bin again takes no more room
        assert socket_client.emit("watch", watch, callback=True)["ok"] is True

    refused = socket_client.emit("watch", watches[2], callback=True)
    assert refused["ok"] is False and refused["code"] == "too_many_watches"
    assert "HOOKSCOPE_WATCHES_PER_SOCKET" in refused["error"]
    assert socket_client.is_connected()


def test_watching_faster_than_the_rate_is_refused_and_closes_the_connection(
    app, client, new_bin, socket_client
):
    app.config["HOOKSCOPE_WATCH_RATE"] = "3/minute"
    watch = {"bin": new_bin["id"], "after": None}
    for _ in range(3):
        assert socket_client.emit("watch", watch, callback=True)["ok"] is True
    refused = socket_client.emit("watch", watch, callback=True)
    assert refused["ok"] is False and refused["code"] == "watch_rate"
    assert "HOOKSCOPE_WATCH_RATE" in refused["error"]
    for _ in range(100):
        if not socket_client.is_connected():
            break
        socketio.sleep(0.02)
    assert not socket_client.is_connected()


LONG = "a" * 5000


def test_summaries_cut_long_paths_and_queries_and_say_so(client, new_bin, socket_client):
    from app.domain.shapes import SUMMARY_TEXT_MAX

    bin_id = new_bin["id"]
    socket_client.emit("watch", {"bin": bin_id, "after": None}, callback=True)
    assert client.post(f"/h/{bin_id}/{LONG}?q={LONG}", data=b"x").status_code == 200
    client.post(f"/h/{bin_id}/short?q=1", data=b"x")

    [live, short_live] = [e["args"][0] for e in socket_client.get_received()]
    [short, listed] = client.get(f"/api/v1/bins/{bin_id}/requests").json["requests"]
    for cut in (live, listed):
        assert cut["path"] == f"/{LONG}"[:SUMMARY_TEXT_MAX]
        assert cut["query_string"] == f"q={LONG}"[:SUMMARY_TEXT_MAX]
        assert cut["path_truncated"] is True and cut["query_string_truncated"] is True
    for whole in (short, short_live):
        assert "path_truncated" not in whole and "query_string_truncated" not in whole

    detail = client.get(f"/api/v1/bins/{bin_id}/requests/1").json
    assert detail["path"] == f"/{LONG}"
    assert detail["query_string"] == f"q={LONG}"
    assert "path_truncated" not in detail


def test_the_watch_rate_counts_per_window(app):
    from app.live.watches import Connection, may_watch, windows

    conn = Connection(pace=windows("2/minute"))
    now = time.monotonic()
    assert [may_watch(conn, now), may_watch(conn, now + 1), may_watch(conn, now + 2)] == [
        True,
        True,
        False,
    ]
    assert may_watch(conn, now + 61) is True
