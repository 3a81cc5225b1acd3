"""Hostile and malformed requests through a real gunicorn: captured exactly, or refused clearly.

Every case ends by checking that the server still captures: a normal request to another bin,
sent right after, is answered 200 and stored byte for byte.

What a sender sees and what is stored (gunicorn 27, our pywsgi worker and its limits in
app/ingest/server.py; the limit
cases use HOOKSCOPE_MAX_BODY_BYTES=65536; "stored" is checked through the detail API and /raw):

| case                             | what the sender saw        | what was stored                  |
|----------------------------------|----------------------------|----------------------------------|
| empty body, Content-Length: 0    | 200 ok                     | 0 bytes, kind empty              |
| invalid UTF-8 body               | 200 ok                     | exact bytes, kind binary         |
| NUL bytes in the body            | 200 ok                     | exact bytes, kind binary         |
| malformed JSON, application/json | 200 ok                     | exact bytes, kind json           |
| 10,000 nested arrays, app/json   | 200 ok                     | exact; kind json; detail 200     |
| 10,000 nested arrays, no type    | 200 ok                     | exact; kind text; detail 200     |
| form 600 KB, 1,000 fields        | 200 ok                     | exact; form: 1,000 pairs         |
| form 600 KB, 12,000 fields       | 200 ok                     | exact; form: 12,000 pairs        |
| multipart, 1,500 parts           | 200 ok                     | exact; 1,000 form, 500 files     |
| chunked, ;ext=1, trailer         | 200 ok                     | body exact; trailer after headers|
| header value 9 KB                | 200 ok                     | header exact                     |
| 120 headers                      | 200 ok                     | all 120, in order                |
| header value 17 KB               | 431 names the limit        | nothing                          |
| 250 headers                      | 431 names the limit        | nothing                          |
| 4,000 repeated query keys        | 200 ok                     | exact; query: 4,000 pairs        |
| 5,000 repeated query keys        | 200 ok                     | exact; query: 5,000 pairs        |
| request line 8 KB (8,190 bytes)  | 200 ok                     | path exact                       |
| request line 9 KB                | 200 ok                     | path exact                       |
| request line over 64 KiB         | 414 URI Too Long           | nothing                          |
| /../X, /%2e%2e/X, /..%2fX        | 200 ok                     | own bin, path as sent; X empty   |
| <id>%2f..%2fX (right after id)   | 200 ok                     | own bin; path raw, with /h/<id>  |
| /caf%C3%A9/%E2%9C%93/%ff%fe      | 200 ok                     | path as sent                     |
| lowercase method post            | 200 ok (methods are case-sensitive tokens) | method "post"    |
| 20-character custom method       | 200 ok                     | method kept                      |
| 30-character custom method       | 200 ok                     | method kept                      |
| PO(ST, GET+2 spaces, GET+tab     | 400 Invalid request line   | nothing                          |
| space after version; no version  | 400 Invalid request line   | nothing                          |
| HTTP/1.0 without Host            | HTTP/1.0 200 ok            | url from the server name         |
| two pipelined requests           | 200, 200 in order          | both, seqs n, n+1, exact         |
| over limit, Content-Length       | 413 names 65536 + setting  | nothing                          |
| over limit, chunked              | 413 names the setting      | nothing                          |
| 413, body > 2x the limit         | 413, Connection: close     | nothing; the rest is not read    |
| keeps streaming after the 413    | connection closed; others fine | nothing                      |
| CL shorter + garbage             | 200, then 400              | Content-Length bytes exactly     |
| CL shorter + a request           | 200, 200                   | body; then 2nd request           |
| CL longer, then FIN              | 400 names Content-Length   | nothing                          |
| closed mid-body (FIN)            | (gone; server sent 400)    | nothing                          |
| closed mid-body (RST)            | (reset)                    | nothing                          |
| closed mid-chunk                 | 400 '...its last chunk...' | nothing                          |
| gzip bomb 1 MB -> 1 GiB          | 200 ok                     | compressed bytes; not inflated   |
| Transfer-Encoding: Chunked       | 200 ok                     | body exact, de-chunked           |
| Content-Length: 005              | 200 ok                     | 5 bytes; the header as sent      |
| ESC, DEL and tab in a value      | 200 ok                     | header exact                     |
| two Content-Lengths, 5 and 30    | 400 names both; closed     | nothing                          |
| Content-Length: 5, 30            | 400 names both; closed     | nothing                          |
| two of 5, or Content-Length: 5, 5| 400 (our choice); closed   | nothing                          |
| Content-Length +5, 1_0, 19 digits| 400 not a byte count; closed | nothing                        |
| Content-Length + Transfer-Enc.   | 400 send one; closed       | nothing (either order)           |
| TE chunked twice, on 1 or 2 lines| 400 chunked more than once; closed | nothing                  |
| TE gzip, chunked; identity+chunked| 501 names the coding; closed | nothing                       |
| TE chunked, gzip; TE gzip        | 400 does not end with chunked; closed | nothing               |
| TE "chunked," (empty element)    | 400 has an empty coding; closed | nothing                     |
| TE on HTTP/1.0, with or w/o CL   | 400 names HTTP/1.0; closed | nothing                          |
| bare CR, CR before CRLF, NUL     | 400 names the field; closed | nothing                         |
| header name: SP, (, Latin-1, ^A; | 400 name is not a token;   | nothing                          |
|   SP before the colon            |   closed                   |                                  |
| head cut short (FIN before the   | 400 names it               | nothing                          |
|   empty line, or mid-line)       |                            |                                  |
| page request (POST /api/v1/bins) | the same 400/501/431 text; | no bin created; no traceback     |
|   with CL + TE, gzip, 17 KB      |   Flask never sees it      |   in the log                     |

X is a second bin; "own bin" is the bin the URL names. Each refused framing case carries a whole
second request in its body (another capture for the same bin): it is never answered or stored, and
the server closes the connection without being asked to.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from harness import Gunicorn

SMALL_LIMIT = 64 * 1024
MIB = 1024 * 1024


# --- raw HTTP on a socket ------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes


def request_bytes(
    method: str, target: str, headers: list[tuple[str, str]], body: bytes = b"", version="1.1"
) -> bytes:
    lines = [f"{method} {target} HTTP/{version}", *(f"{k}: {v}" for k, v in headers), "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


def exchange(server, data: bytes, *, half_close: bool = False, timeout: float = 10) -> list[Answer]:
    """Send bytes as they are, read until the server closes, and split the answers."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return parse_answers(received)


def parse_answers(received: bytes) -> list[Answer]:
    """Split pipelined HTTP/1.x responses framed by Content-Length."""
    answers = []
    while received:
        head, _, rest = received.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        _, status, reason = status_line.split(" ", 2)
        headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines)}
        length = int(headers.get("content-length", len(rest)))
        answers.append(Answer(int(status), reason, headers, rest[:length]))
        received = rest[length:]
    return answers


def exchange_one(server, data: bytes, **kwargs) -> Answer:
    [answer] = exchange(server, data, **kwargs)
    return answer


def mount(bin_: dict) -> str:
    return urlsplit(bin_["capture_url"]).path


# --- the API, as the bin's owner ----------------------------------------------------------


def api(server, path: str) -> requests.Response:
    return requests.get(server.url + path, auth=server.auth, timeout=10)


def detail(server, bin_id: str, seq: int | str) -> dict:
    response = api(server, f"/api/v1/bins/{bin_id}/requests/{seq}")
    assert response.status_code == 200, response.text[:500]
    return response.json()


def last_seq(server, bin_id: str) -> int:
    return api(server, f"/api/v1/bins/{bin_id}").json()["last_seq"]


def listed(server, bin_id: str) -> list[dict]:
    return api(server, f"/api/v1/bins/{bin_id}/requests?limit=200").json()["requests"]


def assert_stored_exactly(server, bin_id: str, seq: int | str, body: bytes) -> dict:
    """Check the body through the detail and the raw download; return the detail."""
    info = detail(server, bin_id, seq)
    assert info["body_size"] == info["body"]["size"] == len(body)
    assert info["body"]["sha256"] == hashlib.sha256(body).hexdigest()
    raw = api(server, f"/api/v1/bins/{bin_id}/requests/{seq}/raw")
    assert raw.status_code == 200
    assert raw.content == body
    return info


def assert_still_captures(server) -> None:
    """A normal capture to a fresh bin, right after, is answered and stored exactly."""
    other = server.create_bin()
    body = b"control " + os.urandom(512)
    response = requests.post(other["capture_url"] + "/control", data=body, timeout=5)
    assert response.status_code == 200
    assert_stored_exactly(server, other["id"], response.headers["X-Hookscope-Seq"], body)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A gunicorn whose capture limit is 64 KiB, so over-limit bodies are quick to send."""
    workdir = tmp_path_factory.mktemp("small")
    with Gunicorn(workdir, env={"HOOKSCOPE_MAX_BODY_BYTES": str(SMALL_LIMIT)}) as running:
        yield running


@pytest.fixture
def bin_(server) -> dict:
    return server.create_bin()


# --- the corpus ----------------------------------------------------------------------------


def form_body(fields: int, size: int) -> bytes:
    value = "v" * (size // fields - len(f"k{fields}=&"))
    return "&".join(f"k{i}={value}" for i in range(fields)).encode()


BOUNDARY = "hookscope-boundary-7d1f"


def multipart_body(parts: int) -> bytes:
    """Every third part a small file, the rest plain fields."""
    out = []
    for i in range(parts):
        if i % 3 == 0:
            out.append(
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file{i}"; '
                f'filename="f{i}.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
                + bytes([i % 256]) * 10
                + b"\r\n"
            )
        else:
            out.append(
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="field{i}"\r\n\r\n'
                f"value{i}\r\n".encode()
            )
    return b"".join(out) + f"--{BOUNDARY}--\r\n".encode()


CHUNKS = [b"hello", b" chunked", b"\x00\xff" * 100, b"!"]
CHUNKED_WIRE = (
    b"".join(b"%x;ext=1\r\n%s\r\n" % (len(c), c) for c in CHUNKS)
    + b"0\r\nX-Trailer: checksum-123\r\n\r\n"
)
NESTED = b"[" * 10_000 + b"]" * 10_000


@dataclass
class Case:
    """One hostile request: what goes on the wire, and what the sender and the bin should see."""

    method: str = "POST"
    sub_path: str = "/hostile"
    headers: list[tuple[str, str]] = field(default_factory=list)
    wire_body: bytes = b""
    stored_body: bytes | None = None  # when the server de-frames it: what it stores
    status: int = 200  # 4xx: refused, nothing stored
    version: str = "1.1"
    host: bool = True
    content_length: bool = True
    line: str | None = None  # a request line of its own, with {target}
    check: object = None  # callable(detail) for extra assertions on a stored capture


def checks_kind(kind: str):
    def check(info: dict) -> None:
        assert info["body"]["kind"] == kind

    return check


def checks_form(pairs: int):
    def check(info: dict) -> None:
        assert info["body"]["kind"] == "form"
        assert len(info["form"]) == pairs
        assert info["form"][0][0] == "k0"
        assert info["files"] is None

    return check


def checks_multipart(info: dict) -> None:
    assert info["body"]["kind"] == "multipart"
    assert len(info["form"]) == 1000
    assert info["form"][0] == ["field1", "value1"]
    assert len(info["files"]) == 500
    assert info["files"][0] == {
        "field": "file0",
        "filename": "f0.bin",
        "content_type": "application/octet-stream",
        "size": 10,
    }


def checks_header(name: str, value: str):
    def check(info: dict) -> None:
        assert [name, value] in info["headers"]

    return check


MANY_HEADERS = [(f"X-Many-{i}", f"value-{i}") for i in range(120)]


def checks_many_headers(info: dict) -> None:
    got = [tuple(h) for h in info["headers"] if h[0].startswith("X-Many-")]
    assert got == MANY_HEADERS


def checks_query(pairs: int):
    def check(info: dict) -> None:
        assert info["query_string"] == "&".join(["a"] * pairs)
        assert len(info["query"]) == pairs

    return check


def checks_http10(info: dict) -> None:
    assert info["http_version"] == "HTTP/1.0"
    # No Host header: the URL is rebuilt from the server's own name and port.
    assert re.fullmatch(r"http://[^/]+:\d+/h/\w+/hostile", info["url"]), info["url"]
    assert "Host" not in [name for name, _ in info["headers"]]


def checks_chunked(info: dict) -> None:
    assert ["Transfer-Encoding", "chunked"] in info["headers"]


# The request line is "<method> <target> HTTP/1.1"; app/ingest/server.py allows 64 KiB of it.
def line_of(length: int, method: str = "GET") -> str:
    """A sub-path that makes the whole request line ``length`` bytes long (for a 26-char id)."""
    fixed = len(f"{method} /h/{'x' * 26}/ HTTP/1.1")
    return "/" + "a" * (length - fixed)


CASES = {
    "empty body, Content-Length 0": Case(check=checks_kind("empty")),
    "invalid UTF-8": Case(
        headers=[("Content-Type", "text/plain; charset=utf-8")],
        wire_body=b"caf\xc3\x28 \xff\xfe \xed\xa0\x80 \xc0\xaf",
        check=checks_kind("binary"),
    ),
    "NUL bytes": Case(wire_body=b"a\x00b\x00\x00\x00c", check=checks_kind("binary")),
    "malformed JSON as application/json": Case(
        headers=[("Content-Type", "application/json")],
        wire_body=b'{"a": [1, 2,, }',
        check=checks_kind("json"),
    ),
    "10,000 nested arrays as application/json": Case(
        headers=[("Content-Type", "application/json")],
        wire_body=NESTED,
        check=checks_kind("json"),
    ),
    "10,000 nested arrays without Content-Type": Case(wire_body=NESTED, check=checks_kind("text")),
    "url-encoded form of 600 KB in 1,000 fields": Case(
        headers=[("Content-Type", "application/x-www-form-urlencoded")],
        wire_body=form_body(1000, 600_000),
        check=checks_form(1000),
    ),
    "url-encoded form of 600 KB in 12,000 fields": Case(
        headers=[("Content-Type", "application/x-www-form-urlencoded")],
        wire_body=form_body(12_000, 600_000),
        check=checks_form(12_000),
    ),
    "multipart with 1,500 parts": Case(
        headers=[("Content-Type", f"multipart/form-data; boundary={BOUNDARY}")],
        wire_body=multipart_body(1500),
        check=checks_multipart,
    ),
    "chunked with extensions and a trailer": Case(
        headers=[("Transfer-Encoding", "chunked")],
        content_length=False,
        wire_body=CHUNKED_WIRE,
        stored_body=b"".join(CHUNKS),
        check=checks_chunked,
    ),
    "header value of 9 KB": Case(
        headers=[("X-Big", "b" * 9 * 1024)], check=checks_header("X-Big", "b" * 9 * 1024)
    ),
    "120 headers": Case(headers=MANY_HEADERS, check=checks_many_headers),
    "header value of 17 KB": Case(headers=[("X-Big", "b" * 17 * 1024)], status=431),
    "250 headers": Case(headers=[(f"X-Many-{i}", "v") for i in range(250)], status=431),
    "4,000 repeated query keys": Case(
        method="GET",
        sub_path="/q?" + "&".join(["a"] * 4000),
        check=checks_query(4000),
    ),
    "5,000 repeated query keys": Case(
        method="GET", sub_path="/q?" + "&".join(["a"] * 5000), check=checks_query(5000)
    ),
    "request line of 8 KB": Case(method="GET", sub_path=line_of(8190)),
    "request line of 9 KB": Case(method="GET", sub_path=line_of(9 * 1024)),
    "request line over 64 KiB": Case(method="GET", sub_path=line_of(64 * 1024 + 10), status=414),
    "path /../<other>": Case(method="GET", sub_path="/../{other}"),
    "path /../../h/<other>": Case(method="GET", sub_path="/../../h/{other}"),
    "path /%2e%2e/<other>": Case(method="GET", sub_path="/%2e%2e/{other}"),
    "path /..%2f<other>": Case(method="GET", sub_path="/..%2f{other}"),
    "path %2f..%2f<other> right after the id": Case(method="GET", sub_path="%2f..%2f{other}"),
    "path /%2e%2e%2f%2e%2e%2fetc%2fpasswd": Case(
        method="GET", sub_path="/%2e%2e%2f%2e%2e%2fetc%2fpasswd"
    ),
    "non-ASCII percent-encoded path": Case(method="GET", sub_path="/caf%C3%A9/%E2%9C%93/%ff%fe"),
    "lowercase method post": Case(method="post"),
    "20-character custom method": Case(method="X-HOOKSCOPE-CUSTOM-M"),
    "30-character custom method": Case(method="X" * 30),
    "method with invalid characters": Case(method="PO(ST", status=400),
    "GET and two spaces": Case(line="GET  {target} HTTP/1.1", status=400),
    "GET and a tab": Case(line="GET\t{target} HTTP/1.1", status=400),
    "GET, space after the version": Case(line="GET {target} HTTP/1.1 ", status=400),
    "GET without a version": Case(line="GET {target}", status=400),
    "HTTP/1.0 without Host": Case(wire_body=b"old", version="1.0", host=False, check=checks_http10),
    "Transfer-Encoding: Chunked, any case": Case(
        headers=[("Transfer-Encoding", "Chunked")],
        content_length=False,
        wire_body=CHUNKED_WIRE,
        stored_body=b"".join(CHUNKS),
        check=checks_header("Transfer-Encoding", "Chunked"),
    ),
    "Content-Length with leading zeros": Case(
        headers=[("Content-Length", "005")],
        content_length=False,
        wire_body=b"hello",
        check=checks_header("Content-Length", "005"),
    ),
    "ESC, DEL and a tab in a header value": Case(
        headers=[("X-Odd", "a\x1b[31mb\x7f\tc")], check=checks_header("X-Odd", "a\x1b[31mb\x7f\tc")
    ),
}


def build(case: Case, target: str) -> bytes:
    headers = [("Host", "127.0.0.1")] if case.host else []
    headers += case.headers
    if case.content_length and case.method != "GET":
        headers.append(("Content-Length", str(len(case.wire_body))))
    headers.append(("Connection", "close"))
    if case.line is not None:
        lines = [case.line.format(target=target), *(f"{k}: {v}" for k, v in headers), "", ""]
        return "\r\n".join(lines).encode("latin-1")
    return request_bytes(case.method, target, headers, case.wire_body, case.version)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_hostile_request_is_captured_exactly_or_refused(server, bin_, case):
    other = server.create_bin()
    sub_path = case.sub_path.format(other=other["id"])
    target = mount(bin_) + sub_path
    answer = exchange_one(server, build(case, target))

    assert answer.status == case.status, answer.body[:300]
    if case.status >= 400:
        assert "x-hookscope-seq" not in answer.headers
        assert last_seq(server, bin_["id"]) == 0
    else:
        assert answer.body == b"ok\n"
        seq = answer.headers["x-hookscope-seq"]
        stored = case.wire_body if case.stored_body is None else case.stored_body
        info = assert_stored_exactly(server, bin_["id"], seq, stored)
        assert info["method"] == case.method
        path = sub_path.partition("?")[0]
        # A percent-encoded slash right after the id: the router decodes it, the capture keeps
        # the raw form, so the stored path is the whole raw path, mount included.
        assert info["path"] == (path if not path.startswith("%2f") else target)
        if case.check:
            case.check(info)
    # Nothing escapes the addressed bin.
    assert last_seq(server, other["id"]) == 0
    assert_still_captures(server)


def test_chunked_trailer_fields_are_kept(server, bin_):
    answer = exchange_one(
        server,
        request_bytes(
            "POST",
            mount(bin_),
            [("Host", "127.0.0.1"), ("Transfer-Encoding", "chunked"), ("Connection", "close")],
            CHUNKED_WIRE,
        ),
    )
    assert answer.status == 200
    info = assert_stored_exactly(
        server, bin_["id"], answer.headers["x-hookscope-seq"], b"".join(CHUNKS)
    )
    # Trailer fields are stored after the header fields.
    assert info["headers"][-1] == ["X-Trailer", "checksum-123"]


# --- body limits ----------------------------------------------------------------------------


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_body_over_the_limit_is_refused_with_the_setting_named(small, framing):
    bin_ = small.create_bin()
    body = b"L" * (SMALL_LIMIT + 1)
    data = body if framing == "content-length" else iter([body[:40_000], body[40_000:]])
    response = requests.post(bin_["capture_url"], data=data, timeout=10)
    assert response.status_code == 413
    assert "65536 bytes" in response.text
    assert "HOOKSCOPE_MAX_BODY_BYTES" in response.text
    assert "X-Hookscope-Seq" not in response.headers
    assert last_seq(small, bin_["id"]) == 0
    assert_still_captures(small)


def test_body_at_the_limit_is_stored(small):
    bin_ = small.create_bin()
    body = os.urandom(SMALL_LIMIT)
    response = requests.post(bin_["capture_url"], data=body, timeout=10)
    assert response.status_code == 200
    assert_stored_exactly(small, bin_["id"], response.headers["X-Hookscope-Seq"], body)


def test_refusal_far_over_the_limit_closes_the_connection(small):
    bin_ = small.create_bin()
    head = request_bytes(
        "POST", mount(bin_), [("Host", "127.0.0.1"), ("Content-Length", str(100 * MIB))]
    )
    with socket.create_connection(("127.0.0.1", small.port), timeout=5) as sock:
        sock.sendall(head + b"z" * SMALL_LIMIT)
        received = b""
        while b"\r\n\r\n" not in received:
            received += sock.recv(65536)
        [answer] = parse_answers(received)
        assert answer.status == 413
        # Abort rather than let the server drain 100 MiB.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    assert last_seq(small, bin_["id"]) == 0
    assert answer.headers["connection"] == "close"


def test_a_sender_streaming_past_a_413_does_not_stall_others(tmp_path):
    with Gunicorn(tmp_path, env={"HOOKSCOPE_MAX_BODY_BYTES": str(SMALL_LIMIT)}) as own:
        flooded, probe = own.create_bin(), own.create_bin()
        stop = threading.Event()
        head = request_bytes(
            "POST", mount(flooded), [("Host", "127.0.0.1"), ("Content-Length", str(1 << 40))]
        )
        sock = socket.create_connection(("127.0.0.1", own.port), timeout=5)

        def flood() -> None:
            piece = b"z" * MIB
            try:
                sock.sendall(head)
                while not stop.is_set():
                    sock.sendall(piece)
            except OSError:
                pass

        flooder = threading.Thread(target=flood)
        flooder.start()
        latencies: list[float] = []
        try:
            time.sleep(0.5)
            for _ in range(2):
                started = time.perf_counter()
                try:
                    requests.post(probe["capture_url"], data=b"probe", timeout=1.5)
                    latencies.append(time.perf_counter() - started)
                except requests.RequestException:
                    latencies.append(float("inf"))
        finally:
            stop.set()
            # Wake the flooder out of sendall before closing the socket under it (the server
            # may have closed it already: that is the point).
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            flooder.join(timeout=10)
            sock.close()
        assert_still_captures(own)
        assert last_seq(own, flooded["id"]) == 0
        assert max(latencies) < 1.0, f"ordinary captures took {latencies} s during the flood"


# --- lying Content-Length, pipelining, cut connections ---------------------------------------


def test_content_length_shorter_than_sent_with_garbage_after(server, bin_):
    sent = request_bytes(
        "POST", mount(bin_) + "/short", [("Host", "127.0.0.1"), ("Content-Length", "5")]
    )
    first, second = exchange(server, sent + b"helloGARBAGE\r\n\r\n")
    assert first.status == 200
    # The extra bytes are read as the next request on the connection, and refused.
    assert second.status == 400
    assert b"Invalid HTTP request line" in second.body
    assert [s["seq"] for s in listed(server, bin_["id"])] == [1]
    assert_stored_exactly(server, bin_["id"], 1, b"hello")
    assert_still_captures(server)


def test_content_length_shorter_than_sent_with_a_request_after(server, bin_):
    inner = request_bytes(
        "PUT",
        mount(bin_) + "/second",
        [("Host", "127.0.0.1"), ("Content-Length", "0"), ("Connection", "close")],
    )
    sent = request_bytes(
        "POST", mount(bin_) + "/first", [("Host", "127.0.0.1"), ("Content-Length", "5")]
    )
    answers = exchange(server, sent + b"hello" + inner)
    # Framing follows Content-Length: what follows is a request of its own, captured as such.
    assert [a.status for a in answers] == [200, 200]
    assert [a.headers["x-hookscope-seq"] for a in answers] == ["1", "2"]
    assert_stored_exactly(server, bin_["id"], 1, b"hello")
    assert detail(server, bin_["id"], 2)["method"] == "PUT"
    assert detail(server, bin_["id"], 2)["path"] == "/second"
    assert_still_captures(server)


def test_content_length_longer_than_sent_then_closed_stores_nothing(server, bin_):
    sent = request_bytes(
        "POST", mount(bin_) + "/long", [("Host", "127.0.0.1"), ("Content-Length", "100")]
    )
    answers = exchange(server, sent + b"hello", half_close=True)
    assert_still_captures(server)
    stored = [(s["seq"], s["body_size"]) for s in listed(server, bin_["id"])]
    assert stored == [], f"sender saw {[a.status for a in answers]}; stored {stored}"
    assert all(a.status >= 400 for a in answers)


def test_connection_closed_mid_body_stores_nothing(server, bin_):
    sent = request_bytes(
        "POST", mount(bin_) + "/cut", [("Host", "127.0.0.1"), ("Content-Length", "10000")]
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(sent + b"x" * 5000)
        time.sleep(0.2)
    time.sleep(0.3)
    assert_still_captures(server)
    stored = [(s["seq"], s["body_size"]) for s in listed(server, bin_["id"])]
    assert stored == []


def test_connection_reset_mid_body_stores_nothing(server, bin_):
    sent = request_bytes(
        "POST", mount(bin_) + "/reset", [("Host", "127.0.0.1"), ("Content-Length", "10000")]
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(sent + b"x" * 5000)
        time.sleep(0.2)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    time.sleep(0.3)
    assert_still_captures(server)
    assert last_seq(server, bin_["id"]) == 0


def test_connection_closed_mid_chunk_stores_nothing(server, bin_):
    sent = request_bytes(
        "POST",
        mount(bin_) + "/chunk-cut",
        [("Host", "127.0.0.1"), ("Transfer-Encoding", "chunked")],
    )
    answer = exchange_one(server, sent + b"10\r\nabc", half_close=True)
    # The refusal is right; its wording speaks of Content-Length although none was sent.
    assert answer.status == 400
    assert answer.body == b"the body ended before its last chunk arrived; nothing was stored\n"
    assert last_seq(server, bin_["id"]) == 0
    assert_still_captures(server)


def test_two_pipelined_requests_are_both_captured_in_order(server, bin_):
    first = request_bytes(
        "POST", mount(bin_) + "/one", [("Host", "127.0.0.1"), ("Content-Length", "5")], b"first"
    )
    second = request_bytes(
        "PUT",
        mount(bin_) + "/two",
        [("Host", "127.0.0.1"), ("Content-Length", "6"), ("Connection", "close")],
        b"second",
    )
    answers = exchange(server, first + second)
    assert [(a.status, a.headers["x-hookscope-seq"]) for a in answers] == [(200, "1"), (200, "2")]
    assert assert_stored_exactly(server, bin_["id"], 1, b"first")["path"] == "/one"
    assert assert_stored_exactly(server, bin_["id"], 2, b"second")["path"] == "/two"
    assert_still_captures(server)


# --- ambiguous framing (request smuggling) ---------------------------------------------------

# Stands in for a whole second request to the same bin: were it read from the body, it would be
# answered and stored, and the sender would be speaking for someone else.
SMUGGLED = b"<smuggled request>"
CHUNKED_HELLO = b"5\r\nhello\r\n0\r\n\r\n"


@dataclass
class Framing:
    """A request whose body's end is ambiguous: refused, closed, and nothing read from its body."""

    fields: list[str]  # header lines after Host, exactly as sent
    says: str  # what the refusal must name
    body: bytes = b"hello" + SMUGGLED
    status: int = 400
    version: str = "1.1"


FRAMING = {
    "two Content-Lengths that differ": Framing(
        ["Content-Length: 5", "Content-Length: 30"],
        "Content-Length is sent more than once ('5, 30'); send it once",
    ),
    "Content-Length: 5, 30": Framing(
        ["Content-Length: 5, 30"], "Content-Length is sent more than once ('5, 30')"
    ),
    "two identical Content-Lengths": Framing(
        ["Content-Length: 5", "Content-Length: 5"], "Content-Length is sent more than once ('5, 5')"
    ),
    "Content-Length: 5, 5": Framing(
        ["Content-Length: 5, 5"], "Content-Length is sent more than once ('5, 5')"
    ),
    "Content-Length: +5": Framing(
        ["Content-Length: +5"], "Content-Length '+5' is not a byte count (decimal digits only"
    ),
    "Content-Length: 1_0": Framing(
        ["Content-Length: 1_0"],
        "Content-Length '1_0' is not a byte count",
        body=b"helloworld" + SMUGGLED,
    ),
    "Content-Length of 19 digits": Framing(
        ["Content-Length: 1000000000000000000"], "Content-Length '1000000000000000000' is not a"
    ),
    "Content-Length and Transfer-Encoding": Framing(
        ["Content-Length: 5", "Transfer-Encoding: chunked"],
        "Content-Length and Transfer-Encoding are both sent; send one",
        body=CHUNKED_HELLO + SMUGGLED,
    ),
    "Transfer-Encoding and Content-Length": Framing(
        ["Transfer-Encoding: chunked", "Content-Length: 5"],
        "Content-Length and Transfer-Encoding are both sent; send one",
        body=CHUNKED_HELLO + SMUGGLED,
    ),
    "Transfer-Encoding: chunked twice": Framing(
        ["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"],
        "Transfer-Encoding 'chunked, chunked' applies chunked more than once",
        body=SMUGGLED,
    ),
    "Transfer-Encoding: chunked, chunked": Framing(
        ["Transfer-Encoding: chunked, chunked"],
        "Transfer-Encoding 'chunked, chunked' applies chunked more than once",
        body=SMUGGLED,
    ),
    "Transfer-Encoding: gzip, chunked": Framing(
        ["Transfer-Encoding: gzip, chunked"],
        "transfer coding 'gzip' is not implemented",
        body=SMUGGLED,
        status=501,
    ),
    "Transfer-Encoding: identity, then chunked": Framing(
        ["Transfer-Encoding: identity", "Transfer-Encoding: chunked"],
        "transfer coding 'identity' is not implemented",
        body=SMUGGLED,
        status=501,
    ),
    "Transfer-Encoding: chunked, gzip": Framing(
        ["Transfer-Encoding: chunked, gzip"],
        "Transfer-Encoding 'chunked, gzip' does not end with chunked",
        body=SMUGGLED,
    ),
    "Transfer-Encoding: gzip": Framing(
        ["Transfer-Encoding: gzip"], "Transfer-Encoding 'gzip' does not end with chunked"
    ),
    "Transfer-Encoding: chunked, (empty)": Framing(
        ["Transfer-Encoding: chunked,"],
        "Transfer-Encoding 'chunked,' has an empty coding",
        body=SMUGGLED,
    ),
    "Transfer-Encoding on HTTP/1.0": Framing(
        ["Transfer-Encoding: chunked", "Connection: keep-alive"],
        "Transfer-Encoding on an HTTP/1.0 request",
        body=CHUNKED_HELLO + SMUGGLED,
        version="1.0",
    ),
    "Transfer-Encoding and Content-Length on HTTP/1.0": Framing(
        ["Content-Length: 5", "Transfer-Encoding: chunked", "Connection: keep-alive"],
        "Transfer-Encoding on an HTTP/1.0 request",
        version="1.0",
    ),
    "bare CR in a header value": Framing(
        ["X-Note: a\rb", "Content-Length: 5"],
        "header field 'X-Note' holds a CR that does not end its line",
    ),
    "CR before the CRLF": Framing(
        ["Content-Length: 5", "X-Note: ab\r"], "header field 'X-Note' holds a CR that does not"
    ),
    "NUL in a header value": Framing(
        ["X-Note: a\0b", "Content-Length: 5"], "header field 'X-Note' holds a NUL byte"
    ),
    "space in a header name": Framing(
        ["X Note: 1", "Content-Length: 5"], "header name 'X Note' is not a token"
    ),
    "space before the colon": Framing(
        ["Content-Length: 5", "Content-Length : 30"],
        "header name 'Content-Length ' is not a token",
    ),
    "parenthesis in a header name": Framing(
        ["X(Note): 1", "Content-Length: 5"], "header name 'X(Note)' is not a token"
    ),
    "Latin-1 letter in a header name": Framing(
        ["X-N\xf6te: 1", "Content-Length: 5"], "header name 'X-N\xf6te' is not a token"
    ),
    "control character in a header name": Framing(
        ["X\x01Note: 1", "Content-Length: 5"], "header name 'X\\x01Note' is not a token"
    ),
}


@pytest.mark.parametrize("case", FRAMING.values(), ids=FRAMING.keys())
def test_ambiguous_framing_is_refused_and_the_connection_closed(server, bin_, case):
    smuggled = request_bytes(
        "POST",
        mount(bin_) + "/smuggled",
        [("Host", "127.0.0.1"), ("Content-Length", "0"), ("Connection", "close")],
    )
    head = [f"POST {mount(bin_)}/first HTTP/{case.version}", "Host: 127.0.0.1", *case.fields]
    sent = "\r\n".join([*head, "", ""]).encode("latin-1") + case.body.replace(SMUGGLED, smuggled)
    # The request asks for nothing about the connection: closing it is the server's own doing.
    # exchange() reads until the server closes; one that kept it open fails with a timeout.
    answers = exchange(server, sent, timeout=5)
    assert [a.status for a in answers] == [case.status], [a.body for a in answers]
    [answer] = answers
    assert answer.headers["connection"] == "close"
    text = answer.body.decode("latin-1")
    assert case.says in text
    assert text.endswith("; nothing was stored\n")
    # Neither the request nor the one in its body was stored.
    assert last_seq(server, bin_["id"]) == 0
    assert_still_captures(server)


@pytest.mark.parametrize(
    "tail",
    ["Content-Length: 0\r\n", "Content-Length: 0\r\nX-Cut: half"],
    ids=["closed before the empty line", "closed mid-line"],
)
def test_a_head_cut_short_is_refused_and_nothing_stored(server, bin_, tail):
    sent = f"POST {mount(bin_)}/cut HTTP/1.1\r\nHost: 127.0.0.1\r\n{tail}".encode()
    answer = exchange_one(server, sent, half_close=True)
    assert answer.status == 400
    assert answer.body == b"the header section ended before its empty line; nothing was stored\n"
    assert last_seq(server, bin_["id"]) == 0
    assert_still_captures(server)


@pytest.mark.parametrize(
    ("fields", "status", "says"),
    [
        (["Content-Length: 2", "Transfer-Encoding: chunked"], 400, "are both sent"),
        (["Transfer-Encoding: gzip, chunked"], 501, "'gzip' is not implemented"),
        ([f"X-Big: {'b' * 17 * 1024}"], 431, "longer than 16384 bytes"),
    ],
    ids=["Content-Length and Transfer-Encoding", "gzip, chunked", "header value of 17 KB"],
)
def test_a_refused_page_request_never_reaches_flask(server, fields, status, says):
    logged = len(server.log_text())
    # Answered by Flask, this would create a bin (201).
    head = ["POST /api/v1/bins HTTP/1.1", "Host: 127.0.0.1", *fields]
    sent = "\r\n".join([*head, "", ""]).encode() + b"2\r\n{}\r\n0\r\n\r\n"
    answer = exchange_one(server, sent, timeout=5)
    assert answer.status == status
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    assert says in answer.body.decode()
    assert answer.body.endswith(b"; nothing was stored\n")
    assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
    # The refusal is one line in the error log; no traceback.
    assert "Traceback" not in server.log_text()[logged:]


# --- the gzip bomb ---------------------------------------------------------------------------


def gzip_of_zeros(gib: int = 1) -> bytes:
    """Gzip ``gib`` GiB of zeros without holding them: one full-flushed deflate block, repeated."""
    block = bytes(MIB)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    # After a full flush the compressor starts afresh, so the same input gives the same bytes.
    segment = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    end = deflate.flush()
    crc = 0
    for _ in range(1024 * gib):
        crc = zlib.crc32(block, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    size = (1024 * gib * MIB) & 0xFFFFFFFF
    return header + segment * (1024 * gib) + end + struct.pack("<II", crc, size)


def worker_rss_kib(server) -> int:
    children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text()
    total = 0
    for pid in children.split():
        status = Path(f"/proc/{pid}/status").read_text()
        total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    return total


def test_gzip_bomb_is_stored_compressed_and_never_inflated(server, bin_):
    bomb = gzip_of_zeros()
    assert len(bomb) < 1.1 * MIB  # deflate tops out near 1:1032; 1 GiB of zeros is ~1 MB
    sent = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    response = requests.post(bin_["capture_url"], data=bomb, headers=sent, timeout=10)
    assert response.status_code == 200
    seq = response.headers["X-Hookscope-Seq"]
    before = worker_rss_kib(server)
    started = time.perf_counter()
    info = assert_stored_exactly(server, bin_["id"], seq, bomb)
    elapsed = time.perf_counter() - started
    grown_mib = (worker_rss_kib(server) - before) / 1024
    assert info["body"]["content_encoding"] == "gzip"
    assert info["body"]["kind"] == "binary"
    assert elapsed < 2, f"detail and raw took {elapsed:.2f} s"
    assert grown_mib < 64, f"the worker grew by {grown_mib:.0f} MiB"
    assert_still_captures(server)
