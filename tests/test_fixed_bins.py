"""Fixed bins: declared by the operator, present after every start, with their own read keys."""

from __future__ import annotations

import pytest
import requests
from harness import Gunicorn, csrf_token

from app import config, create_app
from app.domain import bins as rules
from app.extensions import db
from app.store import bins

KEY = "ci-pipeline-read-key-0123456789"


def test_fixed_bins_exist_after_every_start_and_come_back_if_removed(tmp_path):
    bins_file = tmp_path / "bins.toml"
    bins_file.write_text(
        '[[bin]]\nid = "github-staging"\nread_key = "' + KEY + '"\nname = "GitHub staging"\n'
    )
    env = {"HOOKSCOPE_BINS_FILE": str(bins_file), "HOOKSCOPE_FIXED_BINS": "public-demo"}
    server = Gunicorn(tmp_path, env=env)
    auth = {"Authorization": f"Bearer {KEY}"}
    api = f"{server.url}/api/v1/bins/github-staging"
    with server:
        assert requests.post(f"{server.url}/h/github-staging/push", data=b"1", timeout=10).ok
        shown = requests.get(api, headers=auth, timeout=10).json()
        assert (shown["name"], shown["fixed"], shown["expires_at"]) == (
            "GitHub staging",
            True,
            None,
        )
        assert requests.get(api, timeout=10).status_code == 404  # private without its key
        # A fixed bin without a key is public: anyone may read it.
        assert requests.get(f"{server.url}/api/v1/bins/public-demo", timeout=10).ok
        # Deleting it is refused: it is the configuration's, and would be back at the next start.
        refused = requests.delete(api, headers=auth, timeout=10)
        assert refused.status_code == 403
        assert "HOOKSCOPE_FIXED_BINS or HOOKSCOPE_BINS_FILE" in refused.json()["message"]
        assert requests.get(api, headers=auth, timeout=10).json()["request_count"] == 1
    # Gone from the database all the same (an operator's cleanup, a restored backup)...
    database = server.env["DATABASE_URL"].replace("postgresql:", "postgresql+psycopg:")
    operator = create_app({"SQLALCHEMY_DATABASE_URI": database, "RATELIMIT_ENABLED": False})
    with operator.app_context():
        bins.delete_bin("github-staging")
        db.engine.dispose()
    with server:
        # ...and declared again by the next start: back, empty, same key.
        shown = requests.get(api, headers=auth, timeout=10).json()
        assert shown["request_count"] == 0
        assert requests.post(f"{server.url}/h/github-staging", data=b"2", timeout=10).ok
    with server:
        page = requests.get(f"{api}/requests", headers=auth, timeout=10).json()
        assert [r["seq"] for r in page["requests"]] == [1]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"HOOKSCOPE_FIXED_BINS": "bad id!"}, "fixed bin id"),
        ({"HOOKSCOPE_FIXED_BINS": "ok:short"}, "read_key must be 16+"),
        ({"HOOKSCOPE_BINS_FILE": "/nonexistent/bins.toml"}, "HOOKSCOPE_BINS_FILE"),
    ],
)
def test_bad_declarations_fail_at_start(tmp_path, env, named):
    with pytest.raises(config.ConfigError, match=named):
        config.from_environment(str(tmp_path), env=env)


def test_a_malformed_bins_file_names_itself(tmp_path):
    bad = tmp_path / "bins.toml"
    bad.write_text("[[bin]]\nname = 'no id'\n")
    with pytest.raises(config.ConfigError, match="needs an id"):
        config.from_environment(str(tmp_path), env={"HOOKSCOPE_BINS_FILE": str(bad)})


PUBLIC, KEYED = "public-demo", "ci-fixed"
NAMES_THE_DECLARATION = "HOOKSCOPE_FIXED_BINS or HOOKSCOPE_BINS_FILE"


@pytest.fixture
def fixed(app):
    """A public fixed bin and one with a read key, each with two captures."""
    with app.app_context():
        bins.ensure_fixed([{"id": PUBLIC, "name": "Demo"}, {"id": KEYED, "read_key": KEY}])
    client = app.test_client()
    for bin_id in (PUBLIC, KEYED):
        for n in range(2):
            assert client.post(f"/h/{bin_id}/{n}", data=b"x").status_code == 200
    return client


CHANGES = [
    ("PATCH", "", {"name": "pwned"}),
    ("PATCH", "", {"ingest_auth": {"type": "bearer", "token": "locks-the-provider-out"}}),
    ("PATCH", "", {"max_requests": 1}),
    ("PATCH", "", {"expires_after": 3600}),
    ("DELETE", "/requests", None),
    ("DELETE", "/requests/1", None),
    ("PATCH", "/requests/1", {"pinned": True}),
    # A replay is kept on its request, and sent by the server at the caller's word.
    ("POST", "/requests/1/replay", {"url": "https://example.com/in"}),
    ("DELETE", "", None),
]


@pytest.mark.parametrize("credential", ["nothing", "any bearer", "the cookie"])
def test_a_public_bin_is_read_only(app, fixed, credential):
    client = app.test_client()
    headers = {"Authorization": "Bearer " + "z" * 32} if credential == "any bearer" else {}
    if credential == "the cookie":
        # Opened like a share link would: the page's cookie then holds a "key" to it.
        opened = client.post(
            f"/api/v1/bins/{PUBLIC}/session", headers={"Authorization": "Bearer k"}
        )
        assert opened.status_code == 204
        client.environ_base["HTTP_X_CSRFTOKEN"] = csrf_token(client)
    base = f"/api/v1/bins/{PUBLIC}"
    for method, path, body in CHANGES:
        response = client.open(base + path, method=method, json=body, headers=headers)
        assert response.status_code == 403, (method, path, response.json)
        assert response.json["error"] == "read_only_bin"
        assert "public" in response.json["message"]
        assert NAMES_THE_DECLARATION in response.json["message"]

    shown = client.get(base, headers=headers).json
    assert (shown["name"], shown["ingest_auth"], shown["max_requests"]) == ("Demo", None, 1000)
    assert (shown["expires_at"], shown["public"], shown["fixed"]) == (None, True, True)
    listed = client.get(f"{base}/requests", headers=headers).json["requests"]
    assert [(r["seq"], r["pinned"]) for r in listed] == [(2, False), (1, False)]
    assert client.post(f"/h/{PUBLIC}", data=b"still open").status_code == 200


def test_a_fixed_bin_with_a_key_keeps_its_expiry_and_cannot_be_deleted(app, fixed):
    client = app.test_client()
    auth = {"Authorization": f"Bearer {KEY}"}
    base = f"/api/v1/bins/{KEYED}"
    for method, body in [("PATCH", {"expires_after": 3600}), ("DELETE", None)]:
        response = client.open(base, method=method, json=body, headers=auth)
        assert response.status_code == 403, method
        assert response.json["error"] == "fixed_bin"
        assert NAMES_THE_DECLARATION in response.json["message"]
    shown = client.get(base, headers=auth).json
    assert (shown["expires_after"], shown["expires_at"], shown["public"]) == (None, None, False)
    # Everything else is its key holders' to manage.
    assert client.patch(base, json={"name": "CI"}, headers=auth).json["name"] == "CI"
    pinned = client.patch(f"{base}/requests/1", json={"pinned": True}, headers=auth)
    assert pinned.json["pinned"] is True
    assert client.delete(f"{base}/requests/2", headers=auth).status_code == 204
    assert client.delete(f"{base}/requests?include_pinned=true", headers=auth).json == {
        "deleted": 1
    }


@pytest.mark.parametrize(
    ("fixed_", "public", "change", "fields", "code"),
    [
        (True, True, "update", ("name",), "read_only_bin"),
        (True, True, "update", (), "read_only_bin"),
        (True, True, "clear", (), "read_only_bin"),
        (True, True, "delete_request", (), "read_only_bin"),
        (True, True, "pin", (), "read_only_bin"),
        (True, True, "replay", (), "read_only_bin"),
        (True, True, "delete_bin", (), "read_only_bin"),
        (True, False, "update", ("expires_after",), "fixed_bin"),
        (True, False, "delete_bin", (), "fixed_bin"),
        (True, False, "update", ("name", "max_requests", "ingest_auth"), None),
        (True, False, "clear", (), None),
        (True, False, "pin", (), None),
        (True, False, "replay", (), None),
        (True, False, "delete_request", (), None),
        (False, False, "update", ("expires_after",), None),
        (False, False, "delete_bin", (), None),
    ],
)
def test_what_each_kind_of_bin_takes(fixed_, public, change, fields, code):
    refused = rules.refused_change("b", fixed=fixed_, public=public, change=change, fields=fields)
    assert (refused.code if refused else None) == code
