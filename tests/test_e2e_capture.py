"""Capturing through a real gunicorn: what a sender sends is what the API shows, byte for byte."""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import re
import socket
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import requests

MIB = 1024 * 1024
METHODS = "GET HEAD POST PUT PATCH DELETE OPTIONS PROPFIND PURGE REPORT".split()
ISO_UTC_MICROS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def send_raw(url: str, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are and read the answer until the server closes the connection."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return int(status_line.split()[1]), headers, body


def request_bytes(
    method: str, target: str, headers: list[tuple[str, str]], body: bytes = b""
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in headers), "", ""]
    return "\r\n".join(lines).encode("utf-8") + body


def get_json(server, path: str) -> dict:
    response = requests.get(server.url + path, auth=server.auth, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def listed(server, bin_id: str) -> list[dict]:
    return get_json(server, f"/api/v1/bins/{bin_id}/requests?limit=200")["requests"]


def detail(server, bin_id: str, seq: int | str) -> dict:
    return get_json(server, f"/api/v1/bins/{bin_id}/requests/{seq}")


def raw_body(server, bin_id: str, seq: int | str) -> bytes:
    response = requests.get(
        server.url + f"/api/v1/bins/{bin_id}/requests/{seq}/raw", auth=server.auth, timeout=10
    )
    assert response.status_code == 200
    return response.content


def assert_stored_exactly(server, bin_id: str, seq: int | str, body: bytes) -> dict:
    """Check the stored body through both the detail and the raw download; return the detail."""
    info = detail(server, bin_id, seq)
    assert info["body_size"] == info["body"]["size"] == len(body)
    assert info["body"]["sha256"] == hashlib.sha256(body).hexdigest()
    assert raw_body(server, bin_id, seq) == body
    return info


@pytest.fixture
def bin_(server) -> dict:
    return server.create_bin()


def test_chunked_body_from_a_generator_is_stored_whole(server, bin_):
    chunks = [b"first,", os.urandom(70_000), b"", b"\x00last"]
    response = requests.post(bin_["capture_url"], data=iter(chunks), timeout=10)
    assert response.status_code == 200
    info = assert_stored_exactly(
        server, bin_["id"], response.headers["X-Hookscope-Seq"], b"".join(chunks)
    )
    names = [name for name, _ in info["headers"]]
    assert ["Transfer-Encoding", "chunked"] in info["headers"]
    assert "Content-Length" not in names


def test_chunked_body_over_a_raw_socket_is_reassembled(server, bin_):
    chunks = [b"hello ", b"chunked\r\n", b"\x00\xff" * 300, b"!"]
    framed = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    target = urlsplit(bin_["capture_url"]).path + "/chunks"
    status, headers, _ = send_raw(
        server.url,
        request_bytes(
            "POST",
            target,
            [("Host", "127.0.0.1"), ("Transfer-Encoding", "chunked"), ("Connection", "close")],
        )
        + framed,
    )
    assert status == 200
    info = assert_stored_exactly(server, bin_["id"], headers["X-Hookscope-Seq"], b"".join(chunks))
    assert info["path"] == "/chunks"


def test_binary_body_is_kept_byte_for_byte(server, bin_):
    body = bytes(range(256)) + b"\xc3\x28\xa0\xa1\xff\xfe\x00\x00" + bytes(range(255, -1, -1))
    response = requests.post(
        bin_["capture_url"],
        data=body,
        headers={"Content-Type": "application/octet-stream"},
        timeout=10,
    )
    assert response.status_code == 200
    info = assert_stored_exactly(server, bin_["id"], response.headers["X-Hookscope-Seq"], body)
    assert info["body"]["kind"] == "binary"


def test_gzip_body_is_stored_compressed_as_sent(server, bin_):
    body = gzip.compress(b'{"event": "push", "size": 3}' * 50)
    response = requests.post(
        bin_["capture_url"],
        data=body,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        timeout=10,
    )
    assert response.status_code == 200
    info = assert_stored_exactly(server, bin_["id"], response.headers["X-Hookscope-Seq"], body)
    assert info["body"]["content_encoding"] == "gzip"
    assert info["content_type"] == "application/json"


def test_five_megabyte_body_is_stored_exactly(server, bin_):
    body = os.urandom(5 * 1000 * 1000)
    response = requests.post(bin_["capture_url"], data=body, timeout=30)
    assert response.status_code == 200
    assert_stored_exactly(server, bin_["id"], response.headers["X-Hookscope-Seq"], body)


def test_body_over_the_limit_is_refused_and_not_stored(server, bin_):
    response = requests.post(bin_["capture_url"], data=b"x" * (11 * MIB), timeout=30)
    assert response.status_code == 413
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "10.0 MiB" in response.text
    assert "HOOKSCOPE_MAX_BODY_BYTES" in response.text
    assert listed(server, bin_["id"]) == []
    assert get_json(server, f"/api/v1/bins/{bin_['id']}")["last_seq"] == 0


def test_chunked_body_over_the_limit_is_refused_and_not_stored(server, bin_):
    piece = b"y" * MIB
    response = requests.post(bin_["capture_url"], data=(piece for _ in range(11)), timeout=30)
    assert response.status_code == 413
    assert "10.0 MiB" in response.text
    assert "HOOKSCOPE_MAX_BODY_BYTES" in response.text
    assert listed(server, bin_["id"]) == []


def test_empty_body_with_content_length_zero(server, bin_):
    response = requests.post(bin_["capture_url"], data=b"", timeout=10)
    assert response.status_code == 200
    info = assert_stored_exactly(server, bin_["id"], response.headers["X-Hookscope-Seq"], b"")
    assert ["Content-Length", "0"] in info["headers"]
    assert info["body"]["kind"] == "empty"


@pytest.mark.parametrize("method", METHODS)
def test_every_method_is_captured_with_its_name(server, bin_, method):
    response = requests.request(method, bin_["capture_url"] + "/m", data=b"payload", timeout=10)
    assert response.status_code == 200
    # OPTIONS included: the capture answered, not Flask's automatic OPTIONS reply.
    assert response.headers["X-Hookscope-Seq"] == "1"
    assert "Allow" not in response.headers
    [summary] = listed(server, bin_["id"])
    assert (summary["method"], summary["path"], summary["body_size"]) == (method, "/m", 7)


@pytest.mark.parametrize("sub_path", ["", "/", "/a/b", "/a//b/", "/%2e%2e/x", "/caf%C3%A9"])
def test_sub_path_is_stored_as_sent(server, bin_, sub_path):
    # A raw socket: HTTP clients normalise paths (urllib3 turns %2e%2e into ..).
    target = urlsplit(bin_["capture_url"]).path + sub_path
    status, headers, _ = send_raw(
        server.url,
        request_bytes("GET", target, [("Host", "127.0.0.1"), ("Connection", "close")]),
    )
    assert status == 200
    info = detail(server, bin_["id"], headers["X-Hookscope-Seq"])
    assert info["path"] == sub_path
    assert info["url"] == "http://127.0.0.1" + target


def test_raw_utf8_path_is_captured_as_sent(server, bin_):
    # Bytes over 0x7f in the request target are not valid HTTP (RFC 9112, 3.2), but senders do
    # send them; the capture keeps them, shown as the UTF-8 they are.
    target = urlsplit(bin_["capture_url"]).path + "/café"
    status, _, _ = send_raw(
        server.url,
        request_bytes("GET", target, [("Host", "127.0.0.1"), ("Connection", "close")]),
    )
    assert status == 200
    assert [s["path"] for s in listed(server, bin_["id"])] == ["/café"]


def test_repeated_query_keys_are_kept_in_order(server, bin_):
    response = requests.get(bin_["capture_url"] + "/q?a=1&a=2&b=", timeout=10)
    info = detail(server, bin_["id"], response.headers["X-Hookscope-Seq"])
    assert info["query_string"] == "a=1&a=2&b="
    assert info["query"] == [["a", "1"], ["a", "2"], ["b", ""]]


def test_headers_are_kept_in_order_with_duplicates_and_underscores(server, bin_):
    sent = [
        ("Host", "127.0.0.1"),
        ("X-Dup", "first"),
        ("X_Custom_Token", "abc"),
        ("Zeta", "1"),
        ("X-Dup", "second"),
        ("Alpha", "café"),
        ("Content-Length", "0"),
        ("Connection", "close"),
    ]
    target = urlsplit(bin_["capture_url"]).path
    status, headers, _ = send_raw(server.url, request_bytes("POST", target, sent))
    assert status == 200
    info = detail(server, bin_["id"], headers["X-Hookscope-Seq"])
    assert info["headers"] == [[name, value] for name, value in sent]


@pytest.mark.parametrize("target", ["/h/{unknown}", "/h/{unknown}/a/b", "/h/", "/h/bad%20id/x"])
def test_unknown_bin_is_404_and_creates_nothing(server, target):
    # Shaped like a real id (26 characters of base32), but never created.
    unknown = base64.b32encode(os.urandom(16)).decode().rstrip("=").lower()
    response = requests.post(server.url + target.format(unknown=unknown), data=b"x", timeout=10)
    assert response.status_code == 404
    assert "X-Hookscope-Seq" not in response.headers
    assert requests.get(f"{server.url}/api/v1/bins/{unknown}", timeout=10).status_code == 404


def test_sender_address_and_receive_time_are_recorded(server, bin_):
    before = datetime.now(UTC)
    response = requests.post(bin_["capture_url"], data=b"x", timeout=10)
    after = datetime.now(UTC)
    [summary] = listed(server, bin_["id"])
    assert summary["seq"] == int(response.headers["X-Hookscope-Seq"])
    assert summary["remote_addr"] == "127.0.0.1"
    assert ISO_UTC_MICROS.fullmatch(summary["received_at"])
    received = datetime.strptime(summary["received_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    # Same host, same clock: a second of slack, far less than any time-zone slip.
    slack = timedelta(seconds=1)
    assert before.replace(tzinfo=None) - slack <= received <= after.replace(tzinfo=None) + slack


def test_sequence_numbers_count_per_bin(server):
    first, second = server.create_bin(), server.create_bin()
    seen: dict[str, list[int]] = {first["id"]: [], second["id"]: []}
    for target in [first, second, first, first, second, second]:
        response = requests.post(target["capture_url"], data=b"x", timeout=10)
        seen[target["id"]].append(int(response.headers["X-Hookscope-Seq"]))
    assert seen == {first["id"]: [1, 2, 3], second["id"]: [1, 2, 3]}
    for bin_id in seen:
        assert [s["seq"] for s in listed(server, bin_id)] == [3, 2, 1]
        assert {s["bin"] for s in listed(server, bin_id)} == {bin_id}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/bins/{id}",
        "/api/v1/bins/{id}/requests",
        "/api/v1/bins/{id}/requests/1",
        "/api/v1/bins/nosuchbin/requests",
        "/bins/{id}",
    ],
)
def test_pages_and_api_send_security_headers(server, bin_, path):
    requests.post(bin_["capture_url"], data=b"<script>alert(1)</script>", timeout=10)
    # Only the headers are under test: the page's status depends on its template.
    response = requests.get(server.url + path.format(id=bin_["id"]), auth=server.auth, timeout=10)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    csp = response.headers["Content-Security-Policy"]
    assert "default-src" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp


def test_raw_download_cannot_render_in_a_browser(server, bin_):
    body = b"<html><script>alert(1)</script></html>"
    requests.post(bin_["capture_url"], data=body, headers={"Content-Type": "text/html"}, timeout=10)
    response = requests.get(
        server.url + f"/api/v1/bins/{bin_['id']}/requests/1/raw", auth=server.auth, timeout=10
    )
    assert response.status_code == 200
    assert response.content == body
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["Content-Security-Policy"] == "sandbox"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_body_cut_short_of_its_content_length_is_refused_not_stored(server, bin_):
    parts = urlsplit(bin_["capture_url"])
    head = f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: 1000\r\n\r\n"
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head.encode() + b"a" * 500)
        sock.shutdown(socket.SHUT_WR)  # the sender gives up halfway
        answer = b""
        while chunk := sock.recv(65536):  # until the server closes
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"Content-Length (1000 bytes)" in answer
    assert listed(server, bin_["id"]) == []
    # The server is fine, and the next capture is whole.
    assert requests.post(bin_["capture_url"], data=b"b" * 1000, timeout=10).status_code == 200
