"""Optional ingest protection: senders must authenticate, and rejected requests are still shown."""

from __future__ import annotations

import base64

import pytest


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def protected(client):
    def make(ingest_auth: dict) -> str:
        response = client.post("/api/v1/bins", json={"ingest_auth": ingest_auth})
        assert response.status_code == 201
        assert response.json["ingest_auth"] == ingest_auth["type"]
        return response.json["id"]

    return make


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        (basic("stripe", "s3cret"), True),
        ({"Authorization": "basic " + basic("stripe", "s3cret")["Authorization"][6:]}, True),
        (basic("stripe", "wrong"), False),
        (basic("other", "s3cret"), False),
        ({"Authorization": "Bearer s3cret"}, False),
        ({}, False),
    ],
)
def test_basic_auth(client, protected, headers, allowed):
    bin_id = protected({"type": "basic", "username": "stripe", "password": "s3cret"})
    response = client.post(f"/h/{bin_id}/hook", data=b"{}", headers=headers)
    assert response.status_code == (200 if allowed else 401)
    if not allowed:
        assert response.headers["WWW-Authenticate"] == 'Basic realm="hookscope"'
    [summary] = client.get(f"/api/v1/bins/{bin_id}/requests").json["requests"]
    assert summary["rejected"] is (not allowed)
    assert summary["status"] == response.status_code


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({"Authorization": "Bearer tok-123"}, True),
        ({"Authorization": "bearer tok-123"}, True),
        ({"Authorization": "Bearer tok-1234"}, False),
        ({"Authorization": "tok-123"}, False),
        ({}, False),
    ],
)
def test_bearer_token(client, protected, headers, allowed):
    bin_id = protected({"type": "bearer", "token": "tok-123"})
    response = client.put(f"/h/{bin_id}", data=b"x", headers=headers)
    assert response.status_code == (200 if allowed else 401)
    detail = client.get(f"/api/v1/bins/{bin_id}/requests/1").json
    assert detail["rejected"] is (not allowed)
    assert client.get(f"/api/v1/bins/{bin_id}/requests/1/raw").data == b"x"


def test_protection_can_be_removed_and_the_secret_is_never_shown(client, protected):
    bin_id = protected({"type": "bearer", "token": "tok-123"})
    shown = client.get(f"/api/v1/bins/{bin_id}").json
    assert "tok-123" not in str(shown) and shown["ingest_auth"] == "bearer"
    client.patch(f"/api/v1/bins/{bin_id}", json={"ingest_auth": None})
    assert client.post(f"/h/{bin_id}", data=b"x").status_code == 200


def test_a_rejected_capture_is_published_like_any_other(app, client, protected):
    from app.extensions import socketio

    bin_id = protected({"type": "bearer", "token": "tok-123"})
    sio = socketio.test_client(app, flask_test_client=client)
    sio.emit("watch", {"bin": bin_id, "after": None}, callback=True)
    client.post(f"/h/{bin_id}", data=b"x")
    [event] = sio.get_received()
    sio.disconnect()
    assert event["args"][0]["rejected"] is True and event["args"][0]["status"] == 401
