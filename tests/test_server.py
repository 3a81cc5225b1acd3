"""The worker's shortcuts through pywsgi answer exactly what pywsgi's own code would."""

from __future__ import annotations

from email.message import Message
from types import SimpleNamespace

import pytest
from gevent import pywsgi

from app.ingest.server import Handler, Headers

FIELD_LISTS = {
    "wrk": [("Host", "127.0.0.1:8080"), ("Content-Length", "1024"), ("Content-Type", "a/json")],
    "duplicates and case": [
        ("X-Dup", "one"),
        ("x-dup", "two"),
        ("CONTENT-type", "text/plain"),
        ("content-length", "5"),
        ("Content-Length", "7"),
    ],
    "underscores and odd tokens": [
        ("X_Under_Score", "kept raw, not in environ"),
        ("x-a.b!c#d", "tokens"),
        ("Connection", "Upgrade"),
        ("Upgrade", "WebSocket"),
    ],
    "odd values": [
        ("X-Empty", ""),
        ("X-Nbsp", "\xa0padded\xa0"),
        ("X-Latin1", "caf\xe9 \x85 \x1f"),
        ("X-Colons", "a: b: c"),
        ("Transfer-Encoding", "Chunked"),
    ],
    "none": [],
}
NAMES = [
    "transfer-encoding",
    "Transfer-Encoding",
    "content-length",
    "Content-Type",
    "connection",
    "Upgrade",
    "x-dup",
    "X-DUP",
    "x_under_score",
    "x-nbsp",
    "x-missing",
]


def headers(fields: list[tuple[str, str]], cls: type[Message] = Headers) -> Message:
    found = cls()
    found._headers[:] = fields
    return found


@pytest.mark.parametrize("fields", FIELD_LISTS.values(), ids=FIELD_LISTS.keys())
@pytest.mark.parametrize("name", NAMES)
def test_header_lookup_is_email_messages(fields, name):
    for default in (None, "", "fallback"):
        expected = headers(fields, Message).get(name, default)
        assert headers(fields).get(name, default) == expected
        assert headers(fields).getheader(name, default) == expected


@pytest.mark.parametrize("fields", FIELD_LISTS.values(), ids=FIELD_LISTS.keys())
def test_environ_fields_are_pywsgis(fields):
    handler = SimpleNamespace(headers=headers(fields))
    assert list(Handler._headers(handler)) == list(pywsgi.WSGIHandler._headers(handler))
