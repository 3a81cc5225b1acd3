"""Replay through the API against real local targets, under the real server."""

from __future__ import annotations

import base64
import json
import time

import pytest
import requests
import stripe
from harness import Gunicorn
from http_recorder import Recorder

# Loopback spellings that stay forbidden on a server that allow-lists only 127.0.0.1/32.
FORBIDDEN = [
    ("http://127.0.0.2:{port}/", "127.0.0.2", "loopback"),
    ("http://[::1]:{port}/", "::1", "loopback"),
    ("http://[::ffff:127.0.0.2]:{port}/", "127.0.0.2", "loopback"),
    ("http://2130706433:{port}/", "127.0.0.1", "written in a form"),
    ("http://0x7f.1:{port}/", "127.0.0.1", "written in a form"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254", "metadata"),
    ("http://[fd00::1]/", "fd00::1", "private"),
    ("http://10.1.2.3/", "10.1.2.3", "private"),
    ("http://100.64.0.1/", "100.64.0.1", "carrier-grade NAT"),
    ("http://[64:ff9b::7f00:1]/", "64:ff9b::7f00:1", "loopback"),
    ("http://0.0.0.0:{port}/", "0.0.0.0", "unspecified"),
]


@pytest.fixture(scope="module")
def open_server(tmp_path_factory):
    """A server that may reach 127.0.0.1 (a developer's laptop) and follows redirects."""
    env = {
        "HOOKSCOPE_OUTBOUND_ALLOW": "127.0.0.1/32",
        "HOOKSCOPE_OUTBOUND_MAX_REDIRECTS": "3",
        "HOOKSCOPE_OUTBOUND_TIMEOUT_SECONDS": "5",
    }
    with Gunicorn(tmp_path_factory.mktemp("open"), env) as running:
        yield running


@pytest.fixture(scope="module")
def closed_server(tmp_path_factory):
    """A server with the default outbound settings: public addresses only."""
    with Gunicorn(tmp_path_factory.mktemp("closed")) as running:
        yield running


@pytest.fixture
def target():
    with Recorder("127.0.0.1") as recorder:
        yield recorder


def capture(server, headers=None, body=b"", path="", method="POST") -> tuple[str, int]:
    """Send a request to a new bin's capture URL; return the bin and the capture's seq."""
    bin_id = server.create_bin()["id"]
    r = requests.request(
        method, f"{server.url}/h/{bin_id}{path}", headers=headers, data=body, timeout=5
    )
    assert r.status_code == 200, r.text
    return bin_id, int(r.headers["X-Hookscope-Seq"])


def replay(server, bin_id, seq, **payload):
    return requests.post(
        f"{server.url}/api/v1/bins/{bin_id}/requests/{seq}/replay",
        json=payload,
        auth=server.auth,
        timeout=30,
    )


def test_a_replay_reaches_the_target_byte_for_byte_and_is_kept(open_server, target):
    body = b'{"event": "ping"}\x00\xff binary tail'
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=abc"}
    bin_id, seq = capture(open_server, headers, body, path="/gh/hook?x=1")

    answer = replay(open_server, bin_id, seq, url=f"{target.url}/webhooks")

    assert answer.status_code == 200, answer.text
    attempt = answer.json()
    assert attempt["kind"] == "replay"
    assert attempt["response"]["status"] == 200
    assert attempt["response"]["body"] == {"size": 2, "truncated": False, "text": "ok"}
    assert attempt["error"] is None
    assert attempt["timings"]["total_ms"] > 0
    (got,) = target.requests
    assert got.method == b"POST" and got.target == b"/webhooks"
    assert got.body == body
    assert got.header(b"X-Hub-Signature-256") == b"sha256=abc"
    assert got.header(b"Host") == f"127.0.0.1:{target.port}".encode()
    listed = requests.get(
        f"{open_server.url}/api/v1/bins/{bin_id}/requests/{seq}/attempts",
        auth=open_server.auth,
        timeout=5,
    ).json()["attempts"]
    assert [a["id"] for a in listed] == [attempt["id"]]
    detail = requests.get(
        f"{open_server.url}/api/v1/bins/{bin_id}/requests/{seq}", auth=open_server.auth, timeout=5
    ).json()
    assert detail["attempts_url"].endswith(f"/requests/{seq}/attempts")


def test_append_path_adds_the_path_below_the_bin_and_the_query(open_server, target):
    bin_id, seq = capture(open_server, path="/stripe/events?a=1&b=2")

    answer = replay(open_server, bin_id, seq, url=f"{target.url}/hooks", append_path=True)

    assert answer.status_code == 200, answer.text
    assert target.requests[0].target == b"/hooks/stripe/events?a=1&b=2"


def test_an_edited_replay_sends_the_edits(open_server, target):
    bin_id, seq = capture(open_server, {"X-Old": "1", "Content-Type": "text/plain"}, b"old")

    answer = replay(
        open_server,
        bin_id,
        seq,
        url=target.url + "/e",
        method="PUT",
        headers=[["X-New", "2"], ["X-New", "3"], ["Content-Type", "application/octet-stream"]],
        body_base64=base64.b64encode(b"\x00\x01new").decode(),
    )

    assert answer.status_code == 200, answer.text
    assert answer.json()["edited"] is True
    (got,) = target.requests
    assert got.method == b"PUT"
    assert got.body == b"\x00\x01new"
    assert [(n, v) for n, v in got.headers if n.lower().startswith(b"x-")] == [
        (b"X-New", b"2"),
        (b"X-New", b"3"),
    ]


def test_a_re_signed_replay_verifies_at_the_target_with_stripes_library(open_server, target):
    body = json.dumps({"id": "evt_9", "object": "event"}).encode()
    stale = f"t={int(time.time()) - 7200},v1=deadbeef"
    bin_id, seq = capture(open_server, {"Stripe-Signature": stale}, body)

    answer = replay(
        open_server,
        bin_id,
        seq,
        url=target.url,
        resign={"scheme": "stripe", "secret": "whsec_dev"},
    )

    assert answer.status_code == 200, answer.text
    assert answer.json()["resigned"] == "stripe"
    got = target.requests[0]
    header = got.header(b"Stripe-Signature").decode()
    assert stripe.WebhookSignature.verify_header(got.body, header, "whsec_dev", 300)
    assert "whsec_dev" not in open_server.log_text()


def test_each_forbidden_form_is_refused_with_422_naming_the_address(closed_server):
    bin_id, seq = capture(closed_server, body=b"x")
    for url, address, kind in FORBIDDEN:
        answer = replay(closed_server, bin_id, seq, url=url.format(port=closed_server.port))

        assert answer.status_code == 422, (url, answer.text)
        assert answer.json()["error"] == "target_forbidden", url
        message = answer.json()["message"]
        assert address in message and kind in message, (url, message)
        if kind != "written in a form":
            assert "HOOKSCOPE_OUTBOUND_ALLOW" in message, message


def test_a_name_that_resolves_to_loopback_is_refused(closed_server, target):
    bin_id, seq = capture(closed_server)

    answer = replay(closed_server, bin_id, seq, url=f"http://localhost:{target.port}/")

    assert answer.status_code == 422
    assert "localhost resolves to" in answer.json()["message"]
    assert target.requests == []


def test_an_allow_listed_local_target_works_and_its_neighbours_do_not(open_server, target):
    bin_id, seq = capture(open_server)

    assert replay(open_server, bin_id, seq, url=target.url).status_code == 200
    refused = replay(open_server, bin_id, seq, url=f"http://127.0.0.2:{target.port}/")
    assert refused.status_code == 422
    assert "127.0.0.2" in refused.json()["message"]
    assert len(target.requests) == 1


def test_a_redirect_to_a_private_address_is_refused_on_the_hop(open_server):
    def redirect(_request):
        return 302, [("Location", "http://169.254.169.254/latest/meta-data/")], b""

    with Recorder("127.0.0.1", redirect) as public:
        bin_id, seq = capture(open_server)
        answer = replay(open_server, bin_id, seq, url=public.url + "/start")

    assert answer.status_code == 422
    assert answer.json()["error"] == "target_forbidden"
    assert "redirect 1" in answer.json()["message"]
    assert "169.254.169.254" in answer.json()["message"]


def test_a_target_that_is_down_is_an_attempt_with_an_error(open_server, target):
    bin_id, seq = capture(open_server)
    port = target.port
    target.close()

    answer = replay(open_server, bin_id, seq, url=f"http://127.0.0.1:{port}/")

    assert answer.status_code == 200
    assert answer.json()["error"] == "connect_failed"
    assert answer.json()["response"] is None


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({}, "bad_url"),
        ({"url": "ftp://127.0.0.1/"}, "bad_url"),
        ({"url": "http://127.0.0.1/", "method": "GE T"}, "bad_method"),
        ({"url": "http://127.0.0.1/", "headers": [["X-A"]]}, "bad_headers"),
        ({"url": "http://127.0.0.1/", "body": "a", "body_base64": "YQ=="}, "bad_body"),
        ({"url": "http://127.0.0.1/", "body_base64": "%%%"}, "bad_body"),
        ({"url": "http://127.0.0.1/", "resign": {"scheme": "acme", "secret": "s"}}, "bad_resign"),
        ({"url": "http://127.0.0.1/", "headers": [["X-A", "a\r\nB: c"]]}, "bad_request"),
        ({"url": "http://127.0.0.1/", "nonsense": 1}, "bad_json"),
    ],
)
def test_bad_replays_are_refused_with_what_to_fix(open_server, payload, error):
    bin_id, seq = capture(open_server)

    answer = replay(open_server, bin_id, seq, **payload)

    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == error
    assert answer.json()["message"]


def test_copy_as_gives_every_tool_and_the_body_file(open_server):
    bin_id, seq = capture(open_server, {"Content-Type": "application/json"}, b'{"a": 1}')

    got = requests.get(
        f"{open_server.url}/api/v1/bins/{bin_id}/requests/{seq}/copy-as",
        params={"url": "http://127.0.0.1:3000/hook"},
        auth=open_server.auth,
        timeout=5,
    ).json()

    assert set(got["snippets"]) == {"curl", "httpie", "python", "fetch"}
    assert got["snippets"]["curl"]["code"].startswith("curl http://127.0.0.1:3000/hook")
    assert got["body_file"] == f"{bin_id}-{seq}.bin"
