"""Captures in full on the live stream (``watch`` with ``"full": true``), for a relay."""

from __future__ import annotations

import base64

from app.live import full


def events(socket_client) -> dict[str, list[dict]]:
    """What the client received so far, by event name (reading it empties the client's queue)."""
    out: dict[str, list[dict]] = {"captured": [], "captured_full": []}
    for e in socket_client.get_received():
        out.setdefault(e["name"], []).append(e["args"][0])
    return out


def watch(socket_client, new_bin, **extra) -> dict:
    request = {"bin": new_bin["id"], "after": None, "key": new_bin["read_key"], **extra}
    return socket_client.emit("watch", request, callback=True)


def test_a_watcher_that_asks_gets_each_capture_with_its_headers_and_body(
    client, new_bin, socket_client
):
    ack = watch(socket_client, new_bin, full=True)
    body = b"\x00\xff binary \r\n"
    client.post(f"/h/{new_bin['id']}/hook?x=1", data=body, headers={"X-Dup": "1"})

    assert ack["ok"] and ack["full"] is True
    got = events(socket_client)
    [captured], [whole] = got["captured"], got["captured_full"]
    detail = client.get(f"/api/v1/bins/{new_bin['id']}/requests/1").json
    assert {k: whole[k] for k in captured} == captured
    assert whole["headers"] == detail["headers"]
    assert base64.b64decode(whole["body_base64"]) == body


def test_a_page_that_does_not_ask_gets_summaries_only_and_the_same_answer_as_before(
    client, new_bin, socket_client
):
    ack = watch(socket_client, new_bin)
    client.post(f"/h/{new_bin['id']}", data=b"x")

    assert "full" not in ack
    got = events(socket_client)
    assert (len(got["captured"]), got["captured_full"]) == (1, [])


def test_a_body_over_the_limit_comes_without_it(client, new_bin, socket_client, monkeypatch):
    monkeypatch.setattr(full, "MAX_BODY_BYTES", 4)
    watch(socket_client, new_bin, full=True)
    client.post(f"/h/{new_bin['id']}", data=b"12345")
    client.post(f"/h/{new_bin['id']}", data=b"1234")

    large, small = events(socket_client)["captured_full"]
    assert (large["seq"], large["body_base64"]) == (1, None)
    assert base64.b64decode(small["body_base64"]) == b"1234"


def test_where_processes_share_a_queue_full_events_are_not_offered(
    client, new_bin, socket_client, monkeypatch
):
    monkeypatch.setattr(full, "offered", lambda: False)
    ack = watch(socket_client, new_bin, full=True)
    client.post(f"/h/{new_bin['id']}", data=b"x")

    assert ack["full"] is False
    got = events(socket_client)
    assert (len(got["captured"]), got["captured_full"]) == (1, [])
