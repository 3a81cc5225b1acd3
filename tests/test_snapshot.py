"""The request snapshot: every shape of request becomes the plain data we store, exactly."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from werkzeug.test import EnvironBuilder

from app.ingest import snapshot

MOUNT = "/h/abc"
NOW = datetime(2026, 11, 23, 12, 0, 0, 123456, tzinfo=UTC)


def environ(path: str = MOUNT, **kwargs) -> dict:
    env = EnvironBuilder(path=path, base_url="http://hooks.example", **kwargs).get_environ()
    return env


def take(env: dict, body: bytes = b"") -> snapshot.Snapshot:
    return snapshot.take(env, body, mount=MOUNT, received_at=NOW)


@pytest.mark.parametrize(
    ("raw_uri", "path", "query"),
    [
        ("/h/abc", "", ""),
        ("/h/abc/", "/", ""),
        ("/h/abc/stripe/events", "/stripe/events", ""),
        ("/h/abc//double//slash/", "//double//slash/", ""),
        ("/h/abc/%2e%2e/%2fetc", "/%2e%2e/%2fetc", ""),
        ("/h/abc/caf%C3%A9?q=caf%C3%A9", "/caf%C3%A9", "q=caf%C3%A9"),
        ("/h/abc?a=1&a=2&b=", "", "a=1&a=2&b="),
        ("/h/abc?", "", ""),
        ("http://hooks.example/h/abc/x?y=1", "/x", "y=1"),
        ("/h/abc/to/https://a.example/b?u=http://c", "/to/https://a.example/b", "u=http://c"),
        ("/h/abc/x?u=https://a.example/b", "/x", "u=https://a.example/b"),
        ("http://hooks.example/h/abc/to/http://a/b", "/to/http://a/b", ""),
    ],
)
def test_path_and_query_are_kept_as_sent(raw_uri, path, query):
    env = environ()
    env["RAW_URI"] = raw_uri
    snap = take(env)
    assert (snap.path, snap.query_string) == (path, query)


def test_raw_utf8_in_the_path_is_shown_as_text():
    env = environ()
    env["RAW_URI"] = "/h/abc/café".encode().decode("latin-1")  # as gunicorn hands it over
    assert take(env).path == "/café"


def test_without_raw_uri_the_path_is_rebuilt_from_the_environ():
    env = environ(MOUNT + "/a b", query_string="x=1")
    del env["RAW_URI"], env["REQUEST_URI"]
    snap = take(env)
    assert (snap.path, snap.query_string) == ("/a%20b", "x=1")


def test_the_raw_header_list_wins_over_the_environ_and_keeps_names_as_sent():
    env = environ(headers={"X-Dup": "merged"})
    raw = (("Host", "hooks.example"), ("x-dup", "1"), ("X_UNDER", "u"), ("X-Dup", "2"))
    env[snapshot.RAW_HEADERS] = raw
    assert take(env).headers == [
        ["Host", "hooks.example"],
        ["x-dup", "1"],
        ["X_UNDER", "u"],
        ["X-Dup", "2"],
    ]


def test_headers_from_the_environ_keep_their_order_and_content_type():
    env = environ(headers=[("X-First", "1"), ("X-Second", "2")], content_type="text/plain")
    names = [name for name, _ in take(env).headers]
    assert names.index("X-First") < names.index("X-Second")
    assert ["Content-Type", "text/plain"] in take(env).headers


@pytest.mark.parametrize(
    ("wsgi_value", "shown"),
    [
        ("plain", "plain"),
        ("caf\u00c3\u00a9", "café"),  # UTF-8 bytes decoded as Latin-1 by the server
        ("\u00ff\u00fe", "\u00ff\u00fe"),  # not UTF-8: kept byte for byte as Latin-1
        ("\u20ac", "\u20ac"),  # not Latin-1 at all (a test client): left alone
    ],
)
def test_header_text_is_utf8_where_the_bytes_are(wsgi_value, shown):
    assert snapshot.as_text(wsgi_value) == shown


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("CONTENT-TYPE", "Content-Type"),
        ("X-GITHUB-EVENT", "X-Github-Event"),
        ("X_MY_FIELD", "X_My_Field"),
        ("STRIPE-SIGNATURE", "Stripe-Signature"),
    ],
)
def test_header_names_are_title_cased(name, canonical):
    assert snapshot.canonical_name(name) == canonical


@pytest.mark.parametrize(
    "body",
    [b"", b"\x00\x01\xff\xfe", b'{"n": 12345678901234567890}', bytes(range(256)) * 40],
)
def test_body_bytes_are_kept_exactly(body):
    snap = take(environ(method="POST", data=body), body)
    assert snap.body == body


def test_overview_fields():
    env = environ(
        MOUNT + "/x",
        method="PROPFIND",
        content_type="application/json; charset=utf-8",
        environ_overrides={"REMOTE_ADDR": "203.0.113.9", "SERVER_PROTOCOL": "HTTP/1.0"},
    )
    snap = take(env)
    assert snap.method == "PROPFIND"
    assert snap.content_type == "application/json; charset=utf-8"
    assert snap.remote_addr == "203.0.113.9"
    assert snap.http_version == "HTTP/1.0"
    assert snap.url == "http://hooks.example/h/abc/x"
    assert snap.received_at == NOW


def test_missing_content_type_is_none():
    assert take(environ()).content_type is None
