"""Body description for the detail view: its kind, and form fields parsed only for display."""

from __future__ import annotations

import pytest

from app.inspect import bodies


@pytest.mark.parametrize(
    ("content_type", "headers", "body", "kind"),
    [
        (None, [], b"", "empty"),
        ("application/json", [], b'{"a": 1}', "json"),
        ("application/vnd.api+json; charset=utf-8", [], b"[]", "json"),
        ("application/json", [], b"{not json", "json"),  # the page shows it as invalid JSON
        (None, [], b'  {"no": "content type"}', "json"),
        (None, [], b"{looks like json but is not", "text"),
        ("application/x-www-form-urlencoded", [], b"a=1&b=2", "form"),
        ("multipart/form-data; boundary=x", [], b"--x--", "multipart"),
        ("text/plain", [], "héllo".encode(), "text"),
        ("application/xml", [], b"<a/>", "text"),
        ("text/plain", [], b"\xff\xfe\x00", "binary"),
        ("application/octet-stream", [], b"\x00\x01", "binary"),
        ("application/json", [["Content-Encoding", "gzip"]], b"\x1f\x8b...", "binary"),
        ("application/json", [["content-encoding", "identity"]], b"{}", "json"),
    ],
)
def test_kind(content_type, headers, body, kind):
    assert bodies.describe(content_type, headers, body)["kind"] == kind


def test_description_carries_size_hash_encoding_and_charset():
    info = bodies.describe("text/plain; charset=ISO-8859-1", [["Content-Encoding", "br"]], b"abc")
    assert info == {
        "size": 3,
        "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "kind": "binary",
        "content_encoding": "br",
        "charset": "ISO-8859-1",
    }


def test_urlencoded_fields_keep_repeats_blanks_and_order():
    form, files = bodies.form_of(
        "application/x-www-form-urlencoded", b"b=2&a=1&a=&c=%E2%82%AC+sign"
    )
    assert form == [["b", "2"], ["a", "1"], ["a", ""], ["c", "€ sign"]]
    assert files is None


def test_multipart_fields_and_files():
    body = (
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="note"\r\n\r\n'
        b"hello\r\n"
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="doc"; filename="<b>x</b>.pdf"\r\n'
        b"Content-Type: application/pdf\r\n\r\n"
        b"%PDF-1.4\x00\x01\r\n"
        b"--XyZ--\r\n"
    )
    form, files = bodies.form_of("multipart/form-data; boundary=XyZ", body)
    assert form == [["note", "hello"]]
    assert files == [
        {"field": "doc", "filename": "<b>x</b>.pdf", "content_type": "application/pdf", "size": 10}
    ]


def test_multipart_with_many_parts_is_parsed_whole():
    parts = b"".join(
        b'--B\r\nContent-Disposition: form-data; name="f%d"\r\n\r\n%d\r\n' % (i, i)
        for i in range(1500)
    )
    form, _ = bodies.form_of("multipart/form-data; boundary=B", parts + b"--B--\r\n")
    assert len(form) == 1500 and form[-1] == ["f1499", "1499"]


def test_not_a_form():
    assert bodies.form_of("application/json", b"{}") == (None, None)
    assert bodies.form_of(None, b"a=1") == (None, None)


def test_deeply_nested_json_without_content_type_does_not_crash():
    assert bodies.describe(None, [], b"[" * 100_000)["kind"] == "text"
