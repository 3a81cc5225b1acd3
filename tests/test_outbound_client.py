"""The outbound client: what it writes on the wire, what it reads back, and its bounds."""

from __future__ import annotations

import ssl
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from http_recorder import Recorder
from programs import need

from app.outbound import client, guard
from app.outbound.pool import Pool

ALLOW = guard.parse_allow_list("127.0.0.1/32, localhost")


@pytest.fixture
def target():
    with Recorder("127.0.0.1") as recorder:
        yield recorder


def test_headers_go_out_byte_for_byte_in_order_with_duplicates(target):
    headers = [
        ["X-Hub-Signature-256", "sha256=abc"],
        ["Host", "hookscope.example:8000"],  # the capture's Host; the target's replaces it
        ["content-type", "application/octet-stream"],
        ["X-Dup", "one"],
        ["x-dup", "two"],
        ["X_Under_Score", "kept"],
        ["Content-Length", "999"],  # the body's real size replaces it, in place
        ["X-Utf8", "naïve ☃"],
        ["X-Quotes", "a \"b\" 'c' $(id) `id`"],
        ["X-Empty", ""],
        ["X-Dup", "three"],
    ]
    body = b"\x00\x01binary\xff\xfe\r\n"

    result = client.send("PUT", f"{target.url}/p/a%2Fb?x=1&x=2&y", headers, body, allow=ALLOW)

    assert result.error is None, result.message
    assert target.requests[0].head == (
        b"PUT /p/a%2Fb?x=1&x=2&y HTTP/1.1\r\n"
        b"X-Hub-Signature-256: sha256=abc\r\n"
        + f"Host: 127.0.0.1:{target.port}\r\n".encode()
        + b"content-type: application/octet-stream\r\n"
        b"X-Dup: one\r\n"
        b"x-dup: two\r\n"
        b"X_Under_Score: kept\r\n"
        b"Content-Length: 12\r\n"
        b"X-Utf8: na\xc3\xafve \xe2\x98\x83\r\n"
        b"X-Quotes: a \"b\" 'c' $(id) `id`\r\n"
        b"X-Empty: \r\n"
        b"X-Dup: three\r\n"
        b"\r\n"
    )
    assert target.requests[0].body == body


def test_nothing_is_added_to_a_request_without_headers(target):
    result = client.send("GET", f"{target.url}/", [], allow=ALLOW)

    assert result.error is None
    assert (
        target.requests[0].head
        == f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{target.port}\r\n\r\n".encode()
    )


def test_a_chunked_capture_is_sent_chunked(target):
    headers = [["Transfer-Encoding", "chunked"], ["Content-Length", "3"], ["X-After", "1"]]

    result = client.send("POST", target.url, headers, b"hello world", allow=ALLOW)

    assert result.error is None
    assert target.requests[0].head.endswith(b"Transfer-Encoding: chunked\r\nX-After: 1\r\n\r\n")
    assert target.requests[0].body == b"hello world"


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ([["X-Evil", "a\r\nInjected: yes"]], "line break"),
        ([["X-Evil", "a\nb"]], "line break"),
        ([["X-Nul", "a\x00b"]], "NUL"),
        ([["Bad Name", "x"]], "not an HTTP token"),
        ([["X:Colon", "x"]], "not an HTTP token"),
        ([["", "x"]], "not an HTTP token"),
    ],
)
def test_headers_http_cannot_carry_are_refused_and_nothing_is_sent(target, headers, says):
    result = client.send("POST", target.url, headers, b"", allow=ALLOW)

    assert result.error == "bad_request"
    assert says in result.message
    assert target.requests == []


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://127.0.0.1/", "only http:// and https://"),
        ("http://user:pass@127.0.0.1/", "credentials"),
        ("http://example.com@127.0.0.1/", "credentials"),
        ("http://127.0.0.1\\@example.com/", "backslashes"),
        ("http://127.0.0.1/a b", "spaces"),
        ("http://127.0.0.1/\r\nX: y", "control characters"),
        ("http:///path", "has no host"),
        ("http://127.0.0.1:99999/", "not a valid URL"),
        ("http://[fe80::1%25eth0]/", "zone"),
    ],
)
def test_urls_that_could_be_read_two_ways_are_refused(url, says):
    result = client.send("GET", url, [], allow=guard.parse_allow_list("0.0.0.0/0, ::/0"))

    assert result.error == "bad_url"
    assert says in result.message


def test_the_response_keeps_its_headers_in_order_with_duplicates(target):
    target.respond = lambda _r: (
        b"HTTP/1.1 201 Created\r\nSet-Cookie: a=1\r\nX-Reply: one\r\nset-cookie: b=2\r\n"
        b"X-Utf8: \xc3\xa9\r\nContent-Length: 5\r\n\r\nhello"
    )

    result = client.send("POST", target.url, [], b"x", allow=ALLOW)

    assert (result.status, result.reason, result.body, result.truncated) == (
        201,
        "Created",
        b"hello",
        False,
    )
    assert result.headers == [
        ["Set-Cookie", "a=1"],
        ["X-Reply", "one"],
        ["set-cookie", "b=2"],
        ["X-Utf8", "é"],
        ["Content-Length", "5"],
    ]


def test_interim_answers_are_skipped(target):
    target.respond = lambda _r: (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
        b"HTTP/1.1 204 No Content\r\n\r\n"
    )

    result = client.send("POST", target.url, [["Expect", "100-continue"]], b"x", allow=ALLOW)

    assert result.error is None, result.message
    assert result.status == 204


@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
def test_a_large_response_is_cut_at_the_limit_and_says_so(target, framing):
    body = b"0123456789" * 1000
    if framing == "length":
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n" + body
    elif framing == "chunked":
        answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        answer += b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in [body[:7000], body[7000:]])
        answer += b"0\r\n\r\n"
    else:
        answer = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body
    target.respond = lambda _r: answer

    result = client.send(
        "GET", target.url, [], allow=ALLOW, limits=client.Limits(max_response_bytes=4096)
    )

    assert result.error is None
    assert result.truncated
    assert result.body == body[:4096]
    assert "HOOKSCOPE_OUTBOUND_MAX_RESPONSE_BYTES" in result.message


def test_a_server_that_never_answers_times_out(target):
    def hold(_request):
        target.closing.wait()
        yield b""

    target.respond = hold

    result = client.send("GET", target.url, [], allow=ALLOW, limits=client.Limits(timeout=0.3))

    assert result.error == "timeout"
    assert "HOOKSCOPE_OUTBOUND_TIMEOUT_SECONDS" in result.message


def test_a_server_that_trickles_its_answer_times_out_in_total(target):
    """Each byte comes well within the timeout; the whole answer never does."""

    def trickle(_request):
        yield b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n"
        while not target.closing.wait(0.02):
            yield b"x"

    target.respond = trickle

    result = client.send("GET", target.url, [], allow=ALLOW, limits=client.Limits(timeout=0.5))

    assert result.error == "timeout"


def test_a_closed_port_is_a_connect_failure():
    with Recorder("127.0.0.1") as gone:
        url = gone.url
    result = client.send("GET", url, [], allow=ALLOW)

    assert result.error == "connect_failed"
    assert "127.0.0.1 port" in result.message


def test_an_answer_that_is_not_http_is_a_bad_response(target):
    target.respond = lambda _r: b"SSH-2.0-OpenSSH_9.2\r\n"

    result = client.send("GET", target.url, [], allow=ALLOW)

    assert result.error == "bad_response"


def test_a_server_that_closes_without_answering_has_lost_the_connection(target):
    target.respond = lambda _r: b""

    result = client.send("GET", target.url, [], allow=ALLOW)

    assert result.error == "connection_lost"
    assert "without answering" in result.message


def test_the_relay_allow_list_refuses_nothing(target):
    result = client.send("GET", f"http://localhost:{target.port}/", [], allow=guard.UNRESTRICTED)

    assert result.error is None
    assert len(target.requests) == 1


def test_a_name_that_does_not_resolve_is_a_dns_failure():
    result = client.send("GET", "http://no-such-host.invalid/", [], allow=ALLOW)

    assert result.error == "dns_failed"
    assert "no-such-host.invalid" in result.message


def chain(*answers):
    """Answer each request with the next of ``answers``."""
    queue = list(answers)
    return lambda _r: queue.pop(0)


@pytest.mark.parametrize(
    ("status", "method", "then_method", "then_body"),
    [
        (307, "POST", b"POST", b"payload"),
        (308, "PUT", b"PUT", b"payload"),
        (303, "POST", b"GET", b""),
        (302, "POST", b"GET", b""),
        (301, "POST", b"GET", b""),
        (302, "PUT", b"PUT", b"payload"),
        (303, "HEAD", b"HEAD", b""),
    ],
)
def test_redirects_keep_or_change_the_method_as_browsers_do(
    target, status, method, then_method, then_body
):
    target.respond = chain(
        (status, [("Location", "/next")], b""), (200, [], b"" if method == "HEAD" else b"done")
    )
    headers = [["Content-Type", "text/plain"], ["X-Keep", "1"]]
    body = b"" if method == "HEAD" else b"payload"

    result = client.send(
        method,
        f"{target.url}/first",
        headers,
        body,
        allow=ALLOW,
        limits=client.Limits(max_redirects=2),
    )

    assert result.error is None, result.message
    assert result.status == 200
    assert result.url == f"{target.url}/next"
    assert [(h.url, h.status) for h in result.redirects] == [(f"{target.url}/first", status)]
    second = target.requests[1]
    assert (second.method, second.target, second.body) == (then_method, b"/next", then_body)
    assert second.header(b"X-Keep") == b"1"
    assert (second.header(b"Content-Type") is None) == (then_method != method.encode())


def test_credentials_stay_behind_when_a_redirect_leaves_the_origin(target):
    with Recorder("127.0.0.1") as elsewhere:
        target.respond = chain(
            (307, [("Location", f"{target.url}/same")], b""),
            (307, [("Location", f"{elsewhere.url}/other")], b""),
        )
        headers = [["Authorization", "Bearer s3cret"], ["Cookie", "a=1"], ["X-Other", "kept"]]

        result = client.send(
            "GET", target.url, headers, allow=ALLOW, limits=client.Limits(max_redirects=5)
        )

    assert result.error is None, result.message
    assert len(result.redirects) == 2
    assert target.requests[1].header(b"Authorization") == b"Bearer s3cret"
    other = elsewhere.requests[0]
    assert other.header(b"Authorization") is None and other.header(b"Cookie") is None
    assert other.header(b"X-Other") == b"kept"


def test_past_the_redirect_limit_the_redirect_is_the_answer(target):
    target.respond = chain((302, [("Location", "/two")], b""), (302, [("Location", "/three")], b""))

    result = client.send("GET", target.url, [], allow=ALLOW, limits=client.Limits(max_redirects=1))

    assert result.error is None
    assert result.status == 302
    assert result.url == f"{target.url}/two"
    assert len(target.requests) == 2


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for the name localhost only (no IP address in it)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [need("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_target(certificate):
    cert, key = certificate
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    names = []
    server.sni_callback = lambda _sock, name, _ctx: names.append(name)
    with Recorder("127.0.0.1", tls=server) as recorder:
        recorder.sni = names
        yield recorder


def trusting(certificate) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certificate[0]))
    return context


def test_tls_sends_the_host_name_and_checks_the_certificate_against_it(tls_target, certificate):
    url = f"https://localhost:{tls_target.port}/secure"

    result = client.send("GET", url, [], allow=ALLOW, tls=trusting(certificate))

    assert result.error is None, result.message
    assert result.address == "127.0.0.1"
    assert tls_target.sni == ["localhost"]
    assert tls_target.requests[0].header(b"Host") == f"localhost:{tls_target.port}".encode()


def test_a_kept_tls_connection_carries_the_next_call_after_one_handshake(certificate):
    cert, key = certificate
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    handshakes = []
    server.sni_callback = lambda _sock, name, _ctx: handshakes.append(name)
    trust = trusting(certificate)
    pool = Pool()
    try:
        with Recorder("127.0.0.1", tls=server, keep_alive=True) as target:
            url = f"https://localhost:{target.port}/secure"
            results = [
                client.send("POST", url, [], bytes([i]) * 3, allow=ALLOW, tls=trust, pool=pool)
                for i in range(3)
            ]
            # Another TLS context (other trust, other checks) never takes that connection.
            other = client.send("POST", url, [], b"x", allow=ALLOW, tls=trusting(certificate))
    finally:
        pool.close()

    assert [(r.error, r.status) for r in [*results, other]] == [(None, 200)] * 4
    assert [(r.connection, r.body) for r in target.requests] == [
        (1, b"\x00" * 3),
        (1, b"\x01" * 3),
        (1, b"\x02" * 3),
        (2, b"x"),
    ]
    assert handshakes == ["localhost", "localhost"]


def test_a_certificate_for_another_name_is_refused(tls_target, certificate):
    url = f"https://127.0.0.1:{tls_target.port}/secure"

    result = client.send("GET", url, [], allow=ALLOW, tls=trusting(certificate))

    assert result.error == "tls_failed"
    assert "certificate" in result.message
    assert tls_target.requests == []


def test_an_untrusted_certificate_is_refused(tls_target):
    result = client.send("GET", f"https://localhost:{tls_target.port}/", [], allow=ALLOW)

    assert result.error == "tls_failed"
    assert tls_target.requests == []


def test_it_works_under_gevent_monkey_patching(tmp_path):
    """Inside the server's worker the client must yield to other greenlets while it waits.

    The recording server runs in the same process as a patched thread (a greenlet): if the
    client blocked the process, the server could never answer.
    """
    script = textwrap.dedent(
        f"""
        from gevent import monkey
        monkey.patch_all()
        import sys
        sys.path[:0] = [{str(Path(__file__).parent)!r}, {str(Path(__file__).parent.parent)!r}]
        import gevent, socket
        from http_recorder import Recorder
        from app.outbound import client, guard
        assert socket.socket.__module__.startswith("gevent")
        ticks = []
        ticker = gevent.spawn(lambda: [ticks.append(gevent.sleep(0.001)) for _ in range(5)])
        with Recorder("127.0.0.1") as target:
            result = client.send(
                "POST", target.url + "/g", [["X-A", "1"]], b"body",
                allow=guard.parse_allow_list("127.0.0.1"),
                limits=client.Limits(timeout=10),
            )
        ticker.join()
        print(result.error, result.status, target.requests[0].body, len(ticks))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["None", "200", "b'body'", "5"]
