"""Operator controls: who may create bins, and the admin view of every bin."""

from __future__ import annotations

import json
import logging

import pytest
from flask_migrate import upgrade
from harness import csrf_token, database_url_for, drop_postgres_database

from app import create_app
from app.domain import budgets, keys
from app.extensions import db, socketio

CREATE = "create-token-0123456789"
ADMIN = "admin-token-0123456789abc"


@pytest.fixture
def make_app(tmp_path):
    """Build apps with operator settings, each on a database of its own."""
    made = []

    def make(**config):
        database = database_url_for(tmp_path / str(len(made)))
        (tmp_path / str(len(made))).mkdir(exist_ok=True)
        settings = {"SECRET_KEY": "test", "SQLALCHEMY_DATABASE_URI": database}
        app = create_app({"TESTING": True, "RATELIMIT_ENABLED": False, **settings, **config})
        with app.app_context():
            upgrade()
        made.append((app, database))
        return app

    yield make
    for app, database in made:
        with app.app_context():
            db.engine.dispose()
        if database.startswith("postgresql"):
            drop_postgres_database(database)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# Who may create bins


def test_without_a_create_token_anyone_creates_bins(make_app):
    client = make_app().test_client()
    assert client.post("/api/v1/bins").status_code == 201


def test_the_api_needs_the_create_token_when_one_is_set(make_app):
    app = make_app(HOOKSCOPE_CREATE_TOKEN=CREATE)
    client = app.test_client()
    missing = client.post("/api/v1/bins")
    wrong = client.post("/api/v1/bins", headers=bearer(CREATE + "x"))
    assert missing.status_code == wrong.status_code == 401
    assert missing.json == wrong.json
    assert missing.json["error"] == "create_token_required"
    assert "HOOKSCOPE_CREATE_TOKEN" in missing.json["message"]

    created = client.post("/api/v1/bins", headers=bearer(CREATE), json={"name": "ok"})
    assert created.status_code == 201
    # The same header carries a bin's read key on bin calls; it never passes for the token.
    as_key = client.post("/api/v1/bins", headers=bearer(created.json["read_key"]))
    assert as_key.status_code == 401
    # Capture URLs stay open to providers.
    assert client.post(f"/h/{created.json['id']}", data=b"hi").status_code == 200
    stranger = app.test_client()  # not the creating browser, whose cookie holds the key
    reading = stranger.get(f"/api/v1/bins/{created.json['id']}", headers=bearer(CREATE))
    assert reading.status_code == 404  # the create token opens no bin


def test_the_home_page_asks_for_the_create_token_once(make_app):
    client = make_app(HOOKSCOPE_CREATE_TOKEN=CREATE).test_client()
    token = csrf_token(client)
    assert 'name="create_token"' in client.get("/").text
    refused = client.post("/bins", data={"csrf_token": token})
    assert refused.status_code == 401 and "HOOKSCOPE_CREATE_TOKEN" in refused.text
    wrong = client.post("/bins", data={"csrf_token": token, "create_token": "nope"})
    assert wrong.status_code == 401
    made = client.post("/bins", data={"csrf_token": token, "create_token": CREATE})
    assert made.status_code == 303 and "/bins/" in made.headers["Location"]
    assert CREATE not in made.headers["Location"]
    assert CREATE not in (made.headers.get("Set-Cookie") or "")
    # From now on this browser creates without being asked.
    assert 'name="create_token"' not in client.get("/").text
    assert client.post("/bins", data={"csrf_token": token}).status_code == 303
    # The API call from the same browser rides on the session too (with the page's CSRF token).
    api = client.post("/api/v1/bins", headers={"X-CSRFToken": token})
    assert api.status_code == 201


def test_changing_the_create_token_signs_browsers_out(make_app):
    app = make_app(HOOKSCOPE_CREATE_TOKEN=CREATE)
    client = app.test_client()
    token = csrf_token(client)
    client.post("/bins", data={"csrf_token": token, "create_token": CREATE})
    app.config["HOOKSCOPE_CREATE_TOKEN"] = CREATE + "-rotated"
    assert client.post("/bins", data={"csrf_token": token}).status_code == 401


def creators(app) -> dict[str, str | None]:
    with app.app_context(), db.engine.connect() as conn:
        return dict(conn.exec_driver_sql("SELECT id, created_by FROM bins").all())


def test_the_trusted_user_header_is_ignored_when_no_proxy_is_trusted(make_app):
    app = make_app(HOOKSCOPE_CREATE_TOKEN=CREATE, HOOKSCOPE_TRUSTED_USER_HEADER="X-Forwarded-User")
    client = app.test_client()
    forged = {"X-Forwarded-User": "mallory"}
    refused = client.post("/api/v1/bins", headers=forged)
    assert refused.status_code == 401
    assert "HOOKSCOPE_PROXY_COUNT" in refused.json["message"]
    made = client.post("/api/v1/bins", headers={**forged, **bearer(CREATE)})
    assert made.status_code == 201
    assert creators(app) == {made.json["id"]: None}


def test_a_header_set_without_a_trusted_proxy_keeps_creation_closed(make_app):
    app = make_app(HOOKSCOPE_TRUSTED_USER_HEADER="X-Forwarded-User")
    refused = app.test_client().post("/api/v1/bins", headers={"X-Forwarded-User": "mallory"})
    assert refused.status_code == 401
    assert "HOOKSCOPE_TRUSTED_USER_HEADER" in refused.json["message"]


def test_behind_a_trusted_proxy_its_user_creates_bins_and_is_recorded(make_app):
    app = make_app(
        HOOKSCOPE_CREATE_TOKEN=CREATE,
        HOOKSCOPE_TRUSTED_USER_HEADER="X-Forwarded-User",
        HOOKSCOPE_PROXY_COUNT=1,
    )
    client = app.test_client()
    made = client.post("/api/v1/bins", headers={"X-Forwarded-User": "alice@example.com"})
    assert made.status_code == 201
    nobody = app.test_client().post("/api/v1/bins")  # the proxy named no one
    assert nobody.status_code == 401
    assert creators(app) == {made.json["id"]: "alice@example.com"}


# The admin view


def test_the_admin_api_refuses_a_wrong_or_missing_token_alike(make_app):
    client = make_app(HOOKSCOPE_ADMIN_TOKEN=ADMIN).test_client()
    answers = [
        client.get("/api/v1/admin/bins"),
        client.get("/api/v1/admin/bins", headers=bearer("x" * len(ADMIN))),
        client.get("/api/v1/admin/bins", headers=bearer(ADMIN[:-1])),
        client.get("/api/v1/admin/bins", headers={"Authorization": f"Basic {ADMIN}"}),
    ]
    assert {(a.status_code, a.get_data()) for a in answers} == {(401, answers[0].get_data())}
    assert answers[0].json["error"] == "admin_token_required"
    assert "HOOKSCOPE_ADMIN_TOKEN" in answers[0].json["message"]
    gone = client.delete("/api/v1/admin/bins/anything", headers=bearer("wrong"))
    assert (gone.status_code, gone.get_data()) == (401, answers[0].get_data())


def test_without_an_admin_token_the_admin_api_is_off(make_app):
    client = make_app().test_client()
    refused = client.get("/api/v1/admin/bins", headers=bearer(""))
    assert refused.status_code == 401 and refused.json["error"] == "admin_disabled"
    assert "HOOKSCOPE_ADMIN_TOKEN" in refused.json["message"]


def stored_size(client, created: dict, seq: int) -> int:
    key = bearer(created["read_key"])
    base = f"/api/v1/bins/{created['id']}/requests/{seq}"
    detail = client.get(base, headers=key).json
    body = client.get(base + "/raw", headers=key).data
    return budgets.stored_size(len(body), json.dumps(detail["headers"]), detail["url"])


def test_the_admin_api_lists_every_bin_biggest_first_with_true_totals(make_app):
    # The figures are read again at every call: the totals are exact.
    app = make_app(HOOKSCOPE_ADMIN_TOKEN=ADMIN, HOOKSCOPE_STORAGE_CHECK_SECONDS=0)
    client = app.test_client()
    made = [
        app.test_client()
        .post(  # a script each, using the read key it is given
            "/api/v1/bins",
            json={"name": f"bin {i}", "ingest_auth": {"type": "bearer", "token": f"s{i}"}},
        )
        .json
        for i in range(5)
    ]
    sent = {created["id"]: 0 for created in made}
    for i, created in enumerate(made):
        for n in range(i):
            body = b"%d" % n * (500 * (i + 1))
            auth = bearer(f"s{i}") if n % 2 else {}  # some turned away (401): stored all the same
            client.post(f"/h/{created['id']}/{n}", data=body, headers=auth)
            sent[created["id"]] += 1

    listed, cursor, pages = [], None, 0
    while True:
        query = {"limit": 2} | ({"after": cursor} if cursor else {})
        page = client.get("/api/v1/admin/bins", query_string=query, headers=bearer(ADMIN))
        assert page.status_code == 200
        listed += page.json["bins"]
        cursor, pages = page.json["next"], pages + 1
        if cursor is None:
            break
    assert pages == 3
    assert sorted(b["id"] for b in listed) == sorted(sent)
    sizes = [b["stored_bytes"] for b in listed]
    assert sizes == sorted(sizes, reverse=True)
    for created in made:
        row = next(b for b in listed if b["id"] == created["id"])
        count = sent[created["id"]]
        expected = sum(stored_size(client, created, seq) for seq in range(1, count + 1))
        assert (row["request_count"], row["stored_bytes"]) == (count, expected)
        assert row["name"] == created["name"]
        # Those sent without the token are stored as rejected (401): a capture and a refusal.
        turned_away = len(range(0, count, 2))
        assert row["traffic"] == {
            "captures_hour": count,
            "captures_day": count,
            "refusals_hour": turned_away,
            "refusals_day": turned_away,
            "refusals_by_reason": (
                {"unauthorized": {"hour": turned_away, "day": turned_away}} if turned_away else {}
            ),
        }
    storage = page.json["storage"]
    totals = {key: storage[key] for key in ("bins", "requests", "stored_bytes")}
    assert totals == {"bins": 5, "requests": sum(sent.values()), "stored_bytes": sum(sizes)}
    # No read key, no digest of one, no ingest secret.
    text = json.dumps([b for b in listed]) + page.get_data(as_text=True)
    for created in made:
        assert created["read_key"] not in text
        assert keys.digest(created["read_key"]) not in text
    assert "ingest" not in text and "secret" not in text and "hash" not in text


@pytest.mark.parametrize(
    "query",
    [
        {"sort": "requests"},
        {"after": "12"},
        {"after": "x.y"},
        {"sort": "traffic", "after": "-1.abc"},
        {"limit": "0"},
    ],
)
def test_the_admin_api_says_what_is_wrong_with_a_query(make_app, query):
    client = make_app(HOOKSCOPE_ADMIN_TOKEN=ADMIN).test_client()
    refused = client.get("/api/v1/admin/bins", query_string=query, headers=bearer(ADMIN))
    assert refused.status_code == 400 and refused.json["error"] == "bad_parameter"


def test_the_admin_deletes_any_bin_tells_its_pages_and_logs_who(make_app, caplog):
    app = make_app(
        HOOKSCOPE_ADMIN_TOKEN=ADMIN,
        HOOKSCOPE_TRUSTED_USER_HEADER="X-Forwarded-User",
        HOOKSCOPE_PROXY_COUNT=1,
    )
    owner = app.test_client()
    created = owner.post("/api/v1/bins", headers={"X-Forwarded-User": "alice"}).json
    owner.post(f"/h/{created['id']}", data=b"x")
    watcher = socketio.test_client(app, flask_test_client=owner)
    watcher.emit("watch", {"bin": created["id"], "after": None}, callback=True)
    watcher.get_received()

    operator = app.test_client()
    # Migrating set up logging afresh (alembic's fileConfig), dropping pytest's handler.
    logging.getLogger("hookscope.admin").addHandler(caplog.handler)
    with caplog.at_level(logging.INFO, logger="hookscope.admin"):
        gone = operator.delete(
            f"/api/v1/admin/bins/{created['id']}",
            headers={**bearer(ADMIN), "X-Forwarded-User": "ops@example.com"},
        )
        again = operator.delete(f"/api/v1/admin/bins/{created['id']}", headers=bearer(ADMIN))
    assert gone.status_code == 204 and again.status_code == 404
    assert owner.get(f"/api/v1/bins/{created['id']}").status_code == 404
    assert [e["name"] for e in watcher.get_received()] == ["bin_deleted"]
    watcher.disconnect()
    logging.getLogger("hookscope.admin").removeHandler(caplog.handler)
    lines = [r.getMessage() for r in caplog.records if r.name == "hookscope.admin"]
    assert f"admin delete operator=ops@example.com bin={created['id']}" in lines


def test_the_admin_token_from_the_session_needs_csrf_and_yields_to_a_bearer(make_app):
    client = make_app(HOOKSCOPE_ADMIN_TOKEN=ADMIN).test_client()
    token = csrf_token(client)
    created = client.post("/api/v1/bins", headers={"X-CSRFToken": token}).json
    signed_in = client.post("/admin/session", data={"csrf_token": token, "admin_token": ADMIN})
    assert signed_in.status_code == 303 and signed_in.headers["Location"].endswith("/admin")
    assert client.get("/api/v1/admin/bins").status_code == 200  # reading: the cookie will do
    forged = client.delete(f"/api/v1/admin/bins/{created['id']}")
    assert forged.status_code == 400 and forged.json["error"] == "csrf_failed"
    # A Bearer is judged alone: a wrong one is refused even beside a signed-in cookie.
    assert client.get("/api/v1/admin/bins", headers=bearer("wrong")).status_code == 401
    deleted = client.delete(f"/api/v1/admin/bins/{created['id']}", headers={"X-CSRFToken": token})
    assert deleted.status_code == 204


def test_the_admin_page_signs_in_with_a_form_and_shows_the_biggest_first(make_app):
    app = make_app(HOOKSCOPE_ADMIN_TOKEN=ADMIN)
    client = app.test_client()
    token = csrf_token(client)
    small = client.post("/api/v1/bins", json={"name": "small"}, headers={"X-CSRFToken": token})
    big = client.post("/api/v1/bins", json={"name": "<b>big</b>"}, headers={"X-CSRFToken": token})
    client.post(f"/h/{small.json['id']}", data=b"s")
    client.post(f"/h/{big.json['id']}", data=b"b" * 5000)

    asked = client.get("/admin")
    assert asked.status_code == 200 and 'name="admin_token"' in asked.text
    wrong = client.post("/admin/session", data={"csrf_token": token, "admin_token": "nope"})
    assert wrong.status_code == 401 and "HOOKSCOPE_ADMIN_TOKEN" in wrong.text
    client.post("/admin/session", data={"csrf_token": token, "admin_token": ADMIN})
    shown = client.get("/admin").text
    assert ADMIN not in shown
    assert shown.index(big.json["id"]) < shown.index(small.json["id"])
    assert "&lt;b&gt;big&lt;/b&gt;" in shown and "<b>big</b>" not in shown
    for created in (small.json, big.json):
        assert created["read_key"] not in shown

    deleted = client.post(f"/admin/bins/{small.json['id']}/delete", data={"csrf_token": token})
    assert deleted.status_code == 303
    assert small.json["id"] not in client.get("/admin").text
    client.post("/admin/signout", data={"csrf_token": token})
    assert 'name="admin_token"' in client.get("/admin").text


def test_hookscope_admin_usage_prints_the_biggest_first(make_app):
    app = make_app()
    client = app.test_client()
    ids = []
    for size in (10, 3000, 200):
        created = app.test_client().post("/api/v1/bins", json={"name": f"n{size}"}).json
        client.post(f"/h/{created['id']}", data=b"u" * size)
        ids.append(created["id"])
    runner = app.test_cli_runner()
    result = runner.invoke(args=["admin", "usage", "--limit", "2"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("3 bins, 3 requests,")
    assert lines[1].split()[:3] == ["id", "requests", "stored"]
    assert [line.split()[0] for line in lines[2:4]] == [ids[1], ids[2]]
    cursor = lines[4].rsplit(" ", 1)[1]
    rest = runner.invoke(args=["admin", "usage", "--after", cursor]).output.splitlines()
    assert [line.split()[0] for line in rest[2:]] == [ids[0]]
    bad = runner.invoke(args=["admin", "usage", "--after", "nonsense"])
    assert bad.exit_code != 0 and "previous listing" in bad.output
