"""Who can read a bin: the access matrix over page, API, live join and raw download."""

from __future__ import annotations

import pytest

from app.extensions import socketio

CREDENTIALS = ["no key", "wrong key", "another bin's key", "right key", "share link", "cookie"]


@pytest.fixture
def owner(browser):
    """A browser that created two bins and captured one request in the first."""
    client = browser()
    mine = client.post("/api/v1/bins").json
    other = client.post("/api/v1/bins").json
    assert client.post(f"/h/{mine['id']}", data=b"secret").status_code == 200
    return {"client": client, "bin": mine, "other": other}


def stranger(app, owner, credential: str):
    """A fresh client (no cookie) holding the given credential; return it and its headers."""
    client = app.test_client()
    key = {
        "wrong key": "x" * 32,
        "another bin's key": owner["other"]["read_key"],
        "right key": owner["bin"]["read_key"],
    }.get(credential)
    if credential == "share link":
        # What the locked page's script does with the #key=... fragment.
        fragment_key = owner["bin"]["share_url"].split("#key=", 1)[1]
        response = client.post(
            f"/api/v1/bins/{owner['bin']['id']}/session",
            headers={"Authorization": f"Bearer {fragment_key}"},
        )
        assert response.status_code == 204
    if credential == "cookie":
        client = owner["client"]
    return client, ({"Authorization": f"Bearer {key}"} if key else {})


ALLOWED = {"right key", "share link", "cookie"}


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/bins/{id}",
        "/api/v1/bins/{id}/requests",
        "/api/v1/bins/{id}/requests/1",
        "/api/v1/bins/{id}/requests/1/raw",
    ],
)
def test_api_and_raw_download_need_the_key(app, owner, credential, path):
    client, headers = stranger(app, owner, credential)
    response = client.get(path.format(id=owner["bin"]["id"]), headers=headers)
    if credential in ALLOWED:
        assert response.status_code == 200
    else:
        assert response.status_code == 404
        assert response.json["error"] == "bin_not_found"
        assert b"secret" not in response.data


@pytest.mark.parametrize("credential", CREDENTIALS)
def test_the_bin_page_needs_the_key(app, owner, credential):
    client, headers = stranger(app, owner, credential)
    page = client.get(f"/bins/{owner['bin']['id']}", headers=headers)
    if credential in ALLOWED:
        assert page.status_code == 200
        assert owner["bin"]["capture_url"] in page.text
    else:
        assert page.status_code == 404
        assert "This bin is private" in page.text
        assert owner["bin"]["capture_url"] not in page.text


@pytest.mark.parametrize("credential", CREDENTIALS)
def test_joining_the_live_room_needs_the_key(app, owner, credential):
    client, headers = stranger(app, owner, credential)
    key = headers.get("Authorization", "").removeprefix("Bearer ") or None
    sio = socketio.test_client(app, flask_test_client=client)
    try:
        ack = sio.emit("watch", {"bin": owner["bin"]["id"], "after": 0, "key": key}, callback=True)
        received = sio.get_received()
    finally:
        sio.disconnect()
    if credential in ALLOWED:
        assert ack["ok"] is True
        assert [e["args"][0]["seq"] for e in received] == [1]
    else:
        assert ack == {"ok": False, "error": "no such bin, or this key does not open it"}
        assert received == []


@pytest.mark.parametrize("credential", ["no key", "wrong key", "another bin's key"])
def test_changes_need_the_key(app, owner, credential):
    client, headers = stranger(app, owner, credential)
    base = f"/api/v1/bins/{owner['bin']['id']}"
    assert client.patch(base, json={"name": "pwned"}, headers=headers).status_code == 404
    assert client.delete(f"{base}/requests/1", headers=headers).status_code == 404
    assert client.delete(f"{base}/requests", headers=headers).status_code == 404
    assert client.delete(base, headers=headers).status_code == 404
    assert owner["client"].get(f"{base}/requests/1").status_code == 200


def test_a_missing_bin_and_a_wrong_key_answer_the_same(app, owner):
    client = app.test_client()
    wrong = {"Authorization": "Bearer " + "x" * 32}
    missing = client.get("/api/v1/bins/aaaaaaaaaaaaaaaaaaaaaaaaaa", headers=wrong)
    locked = client.get(f"/api/v1/bins/{owner['bin']['id']}", headers=wrong)
    assert (missing.status_code, missing.json) == (locked.status_code, locked.json)
    page_missing = client.get("/bins/aaaaaaaaaaaaaaaaaaaaaaaaaa")
    page_locked = client.get(f"/bins/{owner['bin']['id']}")
    assert page_missing.status_code == page_locked.status_code == 404
    assert page_missing.text.replace("aaaaaaaaaaaaaaaaaaaaaaaaaa", owner["bin"]["id"]) == (
        page_locked.text
    )


def test_the_capture_url_stays_public(app, owner):
    assert app.test_client().post(f"/h/{owner['bin']['id']}", data=b"x").status_code == 200


def test_a_share_link_with_a_wrong_key_opens_nothing(app, owner):
    client = app.test_client()
    response = client.post(
        f"/api/v1/bins/{owner['bin']['id']}/session",
        headers={"Authorization": "Bearer " + "y" * 32},
    )
    assert response.status_code == 404
    assert client.get(f"/bins/{owner['bin']['id']}").status_code == 404


def test_the_cookie_is_httponly_and_samesite(client):
    response = client.post("/api/v1/bins")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_the_home_page_lists_your_bins_only(app, owner):
    mine = owner["client"].get("/")
    assert owner["bin"]["id"] in mine.text and owner["other"]["id"] in mine.text
    assert owner["bin"]["id"] not in app.test_client().get("/").text
    listed = owner["client"].get("/api/v1/bins").json["bins"]
    assert {b["id"] for b in listed} == {owner["bin"]["id"], owner["other"]["id"]}
    assert app.test_client().get("/api/v1/bins").json == {"bins": []}


def test_a_change_riding_on_the_cookie_needs_the_csrf_token(app, owner):
    # What a forged request from another site would carry: the cookie, but not the token.
    forged = owner["client"]
    base = f"/api/v1/bins/{owner['bin']['id']}"
    token = forged.environ_base.pop("HTTP_X_CSRFTOKEN")
    for method, url, body in [
        ("PATCH", base, {"name": "pwned"}),
        ("DELETE", f"{base}/requests/1", None),
        ("DELETE", f"{base}/requests", None),
        ("DELETE", base, None),
        ("POST", "/api/v1/bins", None),
    ]:
        response = forged.open(url, method=method, json=body)
        assert response.status_code == 400, (method, url)
        assert response.json["error"] == "csrf_failed"
    assert forged.post("/bins").status_code == 400  # the home page's form
    assert forged.get(f"{base}/requests/1").status_code == 200  # nothing changed
    forged.environ_base["HTTP_X_CSRFTOKEN"] = token
    assert forged.patch(base, json={"name": "mine"}).status_code == 200


def test_scripts_with_the_key_need_no_csrf_token(app, owner):
    script = app.test_client()
    auth = {"Authorization": f"Bearer {owner['bin']['read_key']}"}
    base = f"/api/v1/bins/{owner['bin']['id']}"
    assert script.patch(base, json={"name": "ci"}, headers=auth).status_code == 200
    assert script.post("/api/v1/bins").status_code == 201  # no cookie yet: nothing to forge
