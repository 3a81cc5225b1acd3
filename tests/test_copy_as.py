"""Copy as cURL, HTTPie, Python requests and fetch: each snippet, run, sends the capture again.

cURL (bash), Python (requests, in a subprocess) and fetch (Node) are run against a recording
server on loopback, and the bytes it receives are compared with the capture. HTTPie is not
installed here: its command is parsed by bash and its items read as HTTPie reads them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import pytest
from http_recorder import Received, Recorder
from programs import need

from app.inspect.copy_as import INLINE_MAX_BYTES, copy_as, copy_as_all, shell
from app.inspect.copy_as.shape import shape


@dataclass
class Capture:
    method: str
    target: str  # path and query, as sent
    headers: list[list[str]]
    body: bytes


SHELL_HOSTILE = 'it\'s "quoted" $(touch pwned) `touch pwned` $HOME \\ ! *\n\r\n\ttab ☃ \u202e'
CAPTURES = {
    "json": Capture(
        "POST",
        "/h/abc/stripe/events?x=1&x=2&y=%2F",
        [
            ["Host", "hookscope.example"],
            ["User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)"],
            ["Content-Type", "application/json; charset=utf-8"],
            [
                "Stripe-Signature",
                "t=1,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd",
            ],
            ["Content-Length", "70"],
            ["Accept", "*/*; q=0.5, application/xml"],
        ],
        '{"id": "evt_1", "data": {"name": "Zoë 🎉", "note": "a\\"b"}, "n": [1, 2]}'.encode(),
    ),
    "binary": Capture(
        "PUT",
        "/h/abc/upload",
        [["Content-Type", "application/octet-stream"], ["X-Checksum", "abc"]],
        bytes(range(256)) * 3 + b"\x00\xff\x00",
    ),
    "shell-hostile": Capture(
        "POST",
        "/h/abc/'quoted'/$(id)?q=$(id)",
        [
            ["Content-Type", "text/plain"],
            ["X-Quotes", "a \"double\" and 'single' $(id) `id` \\ !"],
            ["X-Equals", "=starts with equals"],
            ["X-At", "@/etc/passwd"],
            ["X-Control", "bell\x07 and \x1b[31mred"],
        ],
        SHELL_HOSTILE.encode(),
    ),
    "no-body": Capture(
        "DELETE",
        "/h/abc/a/./b/../c?empty=&flag",
        [["x-lower", "1"], ["X-Empty", ""], ["X-Utf8", "naïve – ☃"]],
        b"",
    ),
    "duplicates": Capture(
        "PATCH",
        "/h/abc/dup",
        [
            ["X-Dup", "one"],
            ["Content-Type", "application/x-www-form-urlencoded"],
            ["x-dup", "two"],
            ["X-Other", "o"],
            ["X-Dup", "three"],
        ],
        b"a=1&b=%20x",
    ),
}


def run(argv: list[str], cwd, stdin: bytes = b"") -> subprocess.CompletedProcess:
    """Run a snippet's program with no proxy settings from this machine."""
    env = {"PATH": os.environ["PATH"], "HOME": str(cwd), "LANG": "C.UTF-8"}
    done = subprocess.run(
        argv, cwd=cwd, env=env, input=stdin, capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done


def sent_headers(received: Received) -> list[tuple[str, str]]:
    """The headers that arrived, decoded, without the two each tool sets itself."""
    return [
        (n.decode(), v.decode())
        for n, v in received.headers
        if n.lower() not in (b"host", b"content-length")
    ]


def kept(capture: Capture) -> list[tuple[str, str]]:
    """The capture's headers that a snippet should reproduce."""
    return shape(capture.method, "http://x/", capture.headers, capture.body).headers


def joined(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Fold repeated names into the first one, as requests and fetch must."""
    merged: dict[str, tuple[str, list[str]]] = {}
    for name, value in headers:
        merged.setdefault(name.lower(), (name, []))[1].append(value)
    return [(name, ", ".join(values)) for name, values in merged.values()]


def assert_same_request(received: Received, capture: Capture, port: int) -> None:
    assert received.method == capture.method.encode()
    assert received.target == capture.target.encode()
    assert received.header(b"Host") == f"127.0.0.1:{port}".encode()
    assert received.body == capture.body
    if capture.body:
        assert received.header(b"Content-Length") == str(len(capture.body)).encode()


@pytest.fixture
def target():
    with Recorder("127.0.0.1") as recorder:
        yield recorder


@pytest.mark.parametrize("name", CAPTURES)
@pytest.mark.parametrize("body_file", [None, "request.bin"])
def test_curl_sends_the_capture_byte_for_byte(target, tmp_path, name, body_file):
    need("curl")
    bash = need("bash")
    capture = CAPTURES[name]
    (tmp_path / "request.bin").write_bytes(capture.body)
    url = target.url + capture.target

    snippet = copy_as(
        "curl", capture.method, url, capture.headers, capture.body, body_file=body_file
    )
    run([bash, "-c", snippet.code + " --silent --output /dev/null"], tmp_path)

    [received] = target.requests
    assert_same_request(received, capture, target.port)
    assert sent_headers(received) == kept(capture)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("name", CAPTURES)
def test_python_requests_sends_the_capture(target, tmp_path, name):
    capture = CAPTURES[name]
    url = target.url + capture.target

    snippet = copy_as("python", capture.method, url, capture.headers, capture.body)
    (tmp_path / "replay.py").write_text(snippet.code)
    run([sys.executable, "replay.py"], tmp_path)

    [received] = target.requests
    assert_same_request(received, capture, target.port)
    assert sent_headers(received) == joined(kept(capture))


@pytest.mark.parametrize("name", CAPTURES)
def test_fetch_sends_the_capture_under_node(target, tmp_path, name):
    node = need("node")
    capture = CAPTURES[name]
    url = target.url + capture.target

    snippet = copy_as("fetch", capture.method, url, capture.headers, capture.body)
    (tmp_path / "replay.js").write_text(snippet.code)
    run([node, "replay.js"], tmp_path)

    [received] = target.requests
    assert received.method == capture.method.encode()
    # The URL standard removes "." and ".." segments; the snippet says so.
    assert received.target == capture.target.replace("/a/./b/../c", "/a/c").encode()
    assert received.body == capture.body
    # fetch adds headers of its own; the capture's are all there, in their order, but for
    # values with control characters, which Node refuses to send (and the snippet says so).
    expected = joined([(n, v) for n, v in kept(capture) if v.isprintable()])
    if len(expected) < len(joined(kept(capture))):
        assert any("Node refuses" in note for note in snippet.notes)
    sent = [h for h in sent_headers(received) if h[0].lower() in {n.lower() for n, _ in expected}]
    assert sent == expected


def httpie_argv(code: str, cwd) -> tuple[list[str], bytes]:
    """Let bash parse the command, with ``http`` standing in for HTTPie: its argv and stdin."""
    stand_in = 'http() { printf "%s\\0" "$@" > argv; if [ -t 0 ]; then :; else cat > stdin; fi; }'
    run([need("bash"), "-c", f"{stand_in}\n{code}"], cwd, stdin=b"")
    argv = (cwd / "argv").read_bytes().decode().split("\0")[:-1]
    stdin = (cwd / "stdin").read_bytes() if (cwd / "stdin").exists() else b""
    return argv, stdin


# HTTPie's request items: KEY then one of these, longest first where two start together.
HTTPIE_SEPARATORS = (":=@", "==@", ":@", "=@", ":=", "==", ":", ";", "=", "@")


def httpie_item(arg: str) -> tuple[str, str, str]:
    """Read an item as HTTPie documents it: a backslash escapes a separator character."""
    special = set("".join(HTTPIE_SEPARATORS))
    pieces: list[tuple[str, bool]] = []  # (text, escaped)
    i = 0
    while i < len(arg):
        if arg[i] == "\\" and i + 1 < len(arg) and arg[i + 1] in special:
            pieces.append((arg[i + 1], True))
            i += 2
        elif arg[i] == "\\":
            pieces.append((arg[i : i + 2], False))
            i += 2
        else:
            pieces.append((arg[i], False))
            i += 1
    text = "".join(p for p, _ in pieces)
    for start in range(len(pieces)):
        if pieces[start][1]:
            continue
        at = "".join(p for p, _ in pieces[:start])
        rest = text[len(at) :]
        for sep in HTTPIE_SEPARATORS:
            unescaped = all(not e for _, e in pieces[start : start + len(sep)])
            if rest.startswith(sep) and unescaped:
                return at, sep, rest[len(sep) :]
    raise AssertionError(f"{arg!r} is no HTTPie item")


@pytest.mark.parametrize("name", CAPTURES)
@pytest.mark.parametrize("body_file", [None, "request.bin"])
def test_httpie_command_holds_the_capture(tmp_path, name, body_file):
    capture = CAPTURES[name]
    (tmp_path / "request.bin").write_bytes(capture.body)
    url = "http://127.0.0.1:8000" + capture.target

    snippet = copy_as(
        "httpie", capture.method, url, capture.headers, capture.body, body_file=body_file
    )
    argv, stdin = httpie_argv(snippet.code, tmp_path)

    options = {"--raw": None}
    while argv[0].startswith("--"):
        flag = argv.pop(0)
        options[flag] = argv.pop(0) if flag == "--raw" else True
    method, sent_url, *items = argv
    assert (method, sent_url) == (capture.method, url)
    headers, unset = [], []
    for item in map(httpie_item, items):
        key, sep, value = item
        assert sep in (":", ";"), f"{item} would be request data"
        if sep == ":" and value == "":
            unset.append(key)
        else:
            headers.append((key, value))
    assert headers == kept(capture)
    body = options["--raw"].encode() if options["--raw"] is not None else stdin
    assert body == capture.body
    if capture.body and options["--raw"] is None:
        assert "--ignore-stdin" not in options
    assert ("--path-as-is" in options) == ("/./" in capture.target)
    assert {"Accept-Encoding", "Connection"} <= set(unset)


def test_httpie_says_when_a_value_cannot_go_exactly():
    snippet = copy_as("httpie", "GET", "http://h/", [["X-Path", "C:\\:dir"]], b"")

    assert any("X-Path" in note for note in snippet.notes)


@pytest.mark.parametrize(
    "text",
    [
        "plain",
        "",
        "it's",
        "$(id) `id` $HOME ${x} \\ ! * ? ~ # ; & | < > ( ) { } [ ]",
        "line one\nline two",
        "tab\tcarriage\rreturn",
        "nul-free control \x01\x02\x1b[0m\x7f",
        "bidi \u202eesrever\u202c and zero width \u200b",
        "unicode ☃ é 漢字 🎉",
        "".join(chr(c) for c in range(1, 256)),
    ],
)
def test_shell_quote_survives_bash(tmp_path, text):
    quoted = shell.quote(text)
    done = run([need("bash"), "-c", f"printf %s {quoted}"], tmp_path)

    assert done.stdout == text.encode()


def test_a_snippet_that_needs_bash_says_so():
    plain = copy_as("curl", "GET", "http://h/", [["X-A", "b"]], b"")
    control = copy_as("curl", "GET", "http://h/", [["X-A", "b\x01"]], b"")

    assert shell.BASH_NOTE not in plain.notes
    assert shell.BASH_NOTE in control.notes


def test_text_that_would_read_differently_on_screen_is_escaped():
    assert shell.quote("a\u202eb") == "$'a\\xe2\\x80\\xaeb'"
    assert shell.quote("x\ry") == "$'x\\ry'"
    assert shell.quote("it's") == "'it'\"'\"'s'"


def test_a_large_text_body_is_read_from_the_file_when_one_is_given():
    body = b"x" * (INLINE_MAX_BYTES + 1)

    with_file = copy_as_all("POST", "http://h/", [], body, body_file="raw.bin")
    inline = copy_as_all("POST", "http://h/", [], body)

    assert "--data-binary @raw.bin" in with_file["curl"].code
    assert with_file["httpie"].code.endswith("< raw.bin")
    assert "--data-raw xxx" in inline["curl"].code
    # Python and fetch always carry the body themselves.
    assert "raw.bin" not in with_file["python"].code + with_file["fetch"].code


def test_hop_by_hop_and_framing_headers_are_left_to_the_tool_and_said_so():
    headers = [
        ["Host", "h"],
        ["Connection", "keep-alive"],
        ["Transfer-Encoding", "chunked"],
        ["Keep-Alive", "timeout=5"],
        ["X-Kept", "1"],
    ]
    snippets = copy_as_all("POST", "http://h/", headers, b"x")

    for snippet in snippets.values():
        assert "timeout=5" not in snippet.code
        assert "chunked" not in snippet.code
        assert any("Host, Transfer-Encoding" in note for note in snippet.notes)
        assert any("Connection, Keep-Alive" in note for note in snippet.notes)


def test_fetch_notes_what_a_browser_will_not_send():
    headers = [["Cookie", "a=1"], ["Origin", "https://x"], ["Sec-Fetch-Site", "none"], ["X-A", "1"]]

    snippet = copy_as("fetch", "POST", "http://h/", headers, b"x")

    assert any("Cookie, Origin, Sec-Fetch-Site" in note for note in snippet.notes)
