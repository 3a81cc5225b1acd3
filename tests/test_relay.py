"""``hookscope forward`` against a real gunicorn, relaying to real servers on 127.0.0.1 that keep
the exact bytes they receive. The command runs as a process of its own, as a user runs it."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import random
import signal
import threading
import time

import pytest
import requests
import stripe
from http_recorder import Received, Recorder, ok
from relaying import WAIT, Cli, client_env, send_raw, wait_until

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def target():
    with Recorder("127.0.0.1") as recorder:
        yield recorder


@pytest.fixture
def relay(tmp_path):
    """Start ``hookscope forward`` runs that share one state directory; end them afterwards."""
    runs: list[Cli] = []

    def start(*args: str, key: str | None = None) -> Cli:
        extra = {"HOOKSCOPE_KEY": key} if key else {}
        run = Cli(["forward", *args], client_env(tmp_path / "state", **extra), tmp_path)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.stop(signal.SIGKILL)


def capture_url(server, bin_: dict) -> str:
    return f"{server.url}/h/{bin_['id']}"


def head_of(method: str, target: str, port: int, headers: list[tuple[str, str | bytes]]) -> bytes:
    """The request head a target should get: the given lines, with Host first as sent."""
    lines = [f"{method} {target} HTTP/1.1".encode()]
    for name, value in headers:
        value = value.encode() if isinstance(value, str) else value
        lines.append(name.encode() + b": " + value)
    return b"\r\n".join(lines) + b"\r\n\r\n"


def multipart() -> tuple[str, bytes]:
    boundary = "----hookscope7MA4YWxkTrZu0gW"
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="event"\r\n\r\n'
            "order.paid\r\n"
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="a.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + bytes(range(256))
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return f"multipart/form-data; boundary={boundary}", body


BODIES = {
    "binary": ("application/octet-stream", bytes(range(256)) * 4 + b"\x00\r\n\xff"),
    "gzip": ("application/json", gzip.compress(json.dumps({"a": "é" * 50}).encode(), mtime=0)),
    "multipart": multipart(),
    "json": ("application/json", json.dumps({"id": "evt_1", "nested": {"n": [1, 2.5]}}).encode()),
    # Over what the live stream carries (app/live/full.py): read by seq from the API instead.
    "large": ("application/octet-stream", random.Random(7).randbytes(300 * 1024)),
}


def test_every_capture_reaches_the_target_byte_for_byte(server, target, relay):
    bin_ = server.create_bin()
    run = relay(capture_url(server, bin_), "--to", f"{target.url}/hooks", "--json",
                key=bin_["read_key"])  # fmt: skip
    sent = []
    for kind, (content_type, body) in BODIES.items():
        headers: list[tuple[str, str | bytes]] = [
            ("Host", f"127.0.0.1:{server.port}"),
            ("X-Dup", "one"),
            ("content-type", content_type),
            ("X-Utf8", "naïve ☃"),
            ("x-dup", "two"),
            ("X_Under_Score", "kept"),
            ("X-Quotes", "a \"b\" 'c' $(id)"),
            ("X-Empty", ""),
        ]
        if kind == "gzip":
            headers.append(("Content-Encoding", "gzip"))
        ending = [("X-Dup", "three")]
        target_path = f"/h/{bin_['id']}/{kind}/a%2Fb?x=1&x=2&y=%20&z"
        chunked = kind == "binary"
        framing = [("Transfer-Encoding", "chunked")] if chunked else [
            ("Content-Length", str(len(body)))
        ]  # fmt: skip
        hop = [("Connection", "keep-alive, X-Private"), ("X-Private", "for Hookscope only"),
               ("Keep-Alive", "timeout=5"), ("TE", "trailers")]  # fmt: skip
        seq = send_raw(server.url, "POST", target_path, headers + hop + framing + ending, body,
                       chunked=chunked)  # fmt: skip
        sent.append((seq, kind, headers, framing, ending, body))

    run.wait_for(lambda r: len(r.delivered()) == len(sent), "every capture delivered")
    assert len(target.requests) == len(sent)
    for got, (_seq, kind, headers, framing, ending, body) in zip(
        target.requests, sent, strict=True
    ):
        expected_headers = [("Host", f"127.0.0.1:{target.port}"), *headers[1:], *framing, *ending]
        assert got.head == head_of(
            "POST", f"/hooks/{kind}/a%2Fb?x=1&x=2&y=%20&z", target.port, expected_headers
        ), kind
        assert got.body == body, kind
    assert run.delivered() == [seq for seq, *_ in sent]
    assert all(r["status"] == 200 and r["latency_ms"] >= 0 for r in run.records)


def test_github_and_stripe_signatures_verify_at_the_target(server, target, relay):
    secret = "whsec_relay-test-secret"
    bin_ = server.create_bin()
    run = relay(capture_url(server, bin_), "--to", target.url, "--json", key=bin_["read_key"])
    # GitHub signs the exact bytes it sends with HMAC-SHA256 (its documented scheme).
    push = json.dumps({"ref": "refs/heads/main", "pusher": {"name": "zoë"}}, indent=2).encode()
    github_sig = "sha256=" + hmac.new(secret.encode(), push, hashlib.sha256).hexdigest()
    send_raw(server.url, "POST", f"/h/{bin_['id']}/github", [
        ("Content-Type", "application/json"), ("X-GitHub-Event", "push"),
        ("X-Hub-Signature-256", github_sig), ("Content-Length", str(len(push))),
    ], push)  # fmt: skip
    # Stripe's own library signs, as Stripe's servers do, and checks at the target.
    event = json.dumps({"id": "evt_1", "object": "event", "type": "invoice.paid",
                        "data": {"object": {"amount_due": 2000, "note": "ünïcode"}}})  # fmt: skip
    stripe_sig = stripe.WebhookSignature.generate_signature_header(event, secret)
    payload = event.encode()
    send_raw(server.url, "POST", f"/h/{bin_['id']}/stripe?livemode=false", [
        ("Content-Type", "application/json; charset=utf-8"), ("Stripe-Signature", stripe_sig),
        ("Content-Length", str(len(payload))),
    ], payload)  # fmt: skip

    run.wait_for(lambda r: len(r.delivered()) == 2, "both delivered")
    github, stripe_got = target.requests
    given = github.header(b"X-Hub-Signature-256").decode()
    expected = "sha256=" + hmac.new(secret.encode(), github.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(given, expected)
    assert stripe.WebhookSignature.verify_header(
        stripe_got.body, stripe_got.header(b"Stripe-Signature").decode(), secret, tolerance=300
    )
    assert stripe_got.target == b"/stripe?livemode=false"


def test_a_header_that_was_not_utf8_goes_out_as_utf8_of_its_latin1_reading(server, target, relay):
    """The documented limit: stored as text, such a value cannot be sent back as its bytes."""
    bin_ = server.create_bin()
    run = relay(capture_url(server, bin_), "--to", target.url, "--json", key=bin_["read_key"])
    send_raw(server.url, "GET", f"/h/{bin_['id']}", [("X-Latin1", b"caf\xe9"), ("X-Ok", "café")])
    run.wait_for(lambda r: len(r.delivered()) == 1, "the capture delivered")
    assert target.requests[0].header(b"X-Latin1") == "café".encode()
    assert target.requests[0].header(b"X-Ok") == "café".encode()


def numbered(server, bin_id: str, n: int, path: str = "/n") -> int:
    """Send capture number ``n`` (its body says which); return its seq."""
    response = requests.post(
        f"{server.url}/h/{bin_id}{path}", data=json.dumps({"n": n}).encode(), timeout=30
    )
    assert response.status_code == 200
    return int(response.headers["X-Hookscope-Seq"])


def numbers(received: list[Received]) -> list[int]:
    return [json.loads(r.body)["n"] for r in received]


def test_killed_and_restarted_mid_stream_it_delivers_every_capture_once(server, relay):
    """SIGKILLed twice while captures keep coming: once between deliveries, once while the
    target holds a capture unanswered. Every capture is answered exactly once, in order; the
    one held at the kill, which the target never answered, is the only one it sees twice."""
    held, release = 25, threading.Event()
    answered: list[int] = []

    def respond(request: Received):
        n = json.loads(request.body)["n"]
        if n == held and not release.is_set():
            release.wait(WAIT)  # the relay is killed meanwhile: this answer reaches no one
            return b""
        answered.append(n)
        return ok(request)

    bin_ = server.create_bin()
    key = bin_["read_key"]
    with Recorder("127.0.0.1", respond) as target:
        args = (capture_url(server, bin_), "--to", target.url, "--json")
        first = relay(*args, key=key)
        for n in range(1, 16):
            numbered(server, bin_["id"], n)
        # Between deliveries: each line is printed after its position is saved.
        first.wait_for(lambda r: len(r.delivered()) == 15, "15 delivered")
        first.stop(signal.SIGKILL)
        for n in range(16, 31):  # while no relay runs
            numbered(server, bin_["id"], n)
        second = relay(*args, key=key)
        wait_until(lambda: held in numbers(target.requests), f"capture {held} at the target")
        second.wait_for(lambda r: len(r.delivered()) == held - 16, "the lines before it")
        second.stop(signal.SIGKILL)  # waiting for the target's answer to capture 25
        release.set()
        third = relay(*args, key=key)
        for n in range(31, 61):  # while the third run catches up
            numbered(server, bin_["id"], n)
        third.wait_for(lambda r: len(r.delivered()) == 60 - held + 1, "the rest delivered")

    assert answered == list(range(1, 61))  # each once, in order
    arrivals = numbers(target.requests)
    assert [n for n in arrivals if arrivals.count(n) > 1] == [held, held]
    assert first.delivered() + second.delivered() + third.delivered() == list(range(1, 61))


def test_a_server_restart_mid_stream_loses_nothing(fresh_server, relay):
    fresh_server.start()
    bin_ = fresh_server.create_bin()
    slow = threading.Event()

    def respond(request: Received):
        if not slow.is_set():
            time.sleep(0.05)  # keep the relay busy while the server goes away
        return ok(request)

    with Recorder("127.0.0.1", respond) as target:
        run = relay(capture_url(fresh_server, bin_), "--to", target.url, "--json",
                    key=bin_["read_key"])  # fmt: skip
        for n in range(1, 11):
            numbered(fresh_server, bin_["id"], n)
        run.wait_for(lambda r: "hookscope: live stream: on" in r.err, "the live stream")
        wait_until(lambda: len(target.requests) >= 3, "the first deliveries")
        fresh_server.stop()
        run.wait_for(lambda r: any("cannot read the bin" in line or "connection lost" in line
                                   for line in r.err), "the relay noticing")  # fmt: skip
        fresh_server.start()
        for n in range(11, 21):
            numbered(fresh_server, bin_["id"], n)
        slow.set()
        run.wait_for(lambda r: len(r.delivered()) == 20, "all 20 delivered")
    assert numbers(target.requests) == list(range(1, 21))
    assert run.delivered() == list(range(1, 21))
    run.wait_for(lambda r: "hookscope: live stream: reconnected" in r.err, "reconnected")
