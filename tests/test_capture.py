"""Capturing through the app in-process: methods, paths, limits, and the live event it sends."""

from __future__ import annotations

import io

import pytest

METHODS = [
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "PATCH",
    "DELETE",
    "OPTIONS",
    "PROPFIND",
    "PURGE",
    "REPORT",
]


def listed(client, bin_id: str) -> list[dict]:
    return client.get(f"/api/v1/bins/{bin_id}/requests?limit=200").json["requests"]


@pytest.mark.parametrize("method", METHODS)
def test_every_method_is_captured_and_answered_200(client, new_bin, method):
    response = client.open(f"/h/{new_bin['id']}/any/path", method=method, data=b"payload")
    assert response.status_code == 200
    assert response.headers["X-Hookscope-Seq"] == "1"
    [summary] = listed(client, new_bin["id"])
    assert (summary["method"], summary["path"]) == (method, "/any/path")


def test_options_is_not_answered_by_flask_itself(client, new_bin):
    response = client.options(f"/h/{new_bin['id']}")
    assert "Allow" not in response.headers
    assert response.headers["X-Hookscope-Seq"] == "1"


def test_unknown_bin_is_404_and_stores_nothing(client, new_bin):
    assert client.post("/h/nosuchbinnosuchbinnosuchbi", data=b"x").status_code == 404
    assert client.post("/h/", data=b"x").status_code == 404
    assert client.post("/h/bad%20id", data=b"x").status_code == 404
    assert listed(client, new_bin["id"]) == []


def test_capture_urls_do_not_collide_with_the_app(client, new_bin):
    assert new_bin["capture_url"].endswith(f"/h/{new_bin['id']}")
    assert client.get("/api/v1/bins/" + new_bin["id"]).status_code == 200
    assert listed(client, new_bin["id"]) == []


def test_body_over_the_limit_is_refused_with_the_setting_named(app, client, new_bin):
    app.config["HOOKSCOPE_MAX_BODY_BYTES"] = 1024
    response = client.post(f"/h/{new_bin['id']}", data=b"x" * 1025)
    assert response.status_code == 413
    assert response.mimetype == "text/plain"
    assert "1025 bytes" in response.text
    assert "1024 bytes" in response.text
    assert "HOOKSCOPE_MAX_BODY_BYTES" in response.text
    assert listed(client, new_bin["id"]) == []


@pytest.mark.parametrize("size", [1024, 1025, 5000])
def test_a_streamed_body_is_refused_past_the_limit_never_cut(app, client, new_bin, size):
    app.config["HOOKSCOPE_MAX_BODY_BYTES"] = 1024
    # What a server hands over for a chunked body: no Content-Length, the stream ends by itself.
    response = client.post(
        f"/h/{new_bin['id']}",
        input_stream=io.BytesIO(b"z" * size),
        environ_overrides={"wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"},
    )
    if size <= 1024:
        assert response.status_code == 200
        assert client.get(f"/api/v1/bins/{new_bin['id']}/requests/1/raw").data == b"z" * size
    else:
        assert response.status_code == 413
        assert "body is larger than the limit" in response.text
        assert listed(client, new_bin["id"]) == []


def test_body_at_the_limit_is_stored_whole(app, client, new_bin):
    app.config["HOOKSCOPE_MAX_BODY_BYTES"] = 1024
    body = bytes(range(256)) * 4
    assert client.post(f"/h/{new_bin['id']}", data=body).status_code == 200
    assert client.get(f"/api/v1/bins/{new_bin['id']}/requests/1/raw").data == body


def test_413_message_uses_mib_for_large_limits(app, client, new_bin):
    app.config["HOOKSCOPE_MAX_BODY_BYTES"] = 10 * 1024 * 1024
    response = client.post(f"/h/{new_bin['id']}", data=b"x" * (11 * 1024 * 1024))
    assert response.status_code == 413
    assert response.text == (
        "body is 11.0 MiB; this server accepts up to 10.0 MiB (HOOKSCOPE_MAX_BODY_BYTES)\n"
    )


def test_sequence_numbers_are_per_bin(client):
    a = client.post("/api/v1/bins").json["id"]
    b = client.post("/api/v1/bins").json["id"]
    seqs = [client.post(f"/h/{bin_id}").headers["X-Hookscope-Seq"] for bin_id in (a, a, b, a, b)]
    assert seqs == ["1", "2", "1", "3", "2"]


def test_capture_is_published_to_the_bins_room_after_commit(client, new_bin, socket_client):
    ack = socket_client.emit("watch", {"bin": new_bin["id"], "after": None}, callback=True)
    assert ack["ok"] is True
    client.post(f"/h/{new_bin['id']}/hook?x=1", data=b'{"a":1}', content_type="application/json")
    events = socket_client.get_received()
    assert [e["name"] for e in events] == ["captured"]
    [summary] = events[0]["args"]
    assert summary == listed(client, new_bin["id"])[0]
    assert "body" not in summary


def test_a_capture_in_another_bin_is_not_published_to_this_one(client, new_bin, socket_client):
    other = client.post("/api/v1/bins").json["id"]
    socket_client.emit("watch", {"bin": new_bin["id"], "after": None}, callback=True)
    client.post(f"/h/{other}", data=b"x")
    assert socket_client.get_received() == []
