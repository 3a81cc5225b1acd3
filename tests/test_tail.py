"""``hookscope tail`` against a real gunicorn, as a process of its own."""

from __future__ import annotations

import base64
import json
import signal

import pytest
import stripe
from relaying import Cli, client_env, send_raw

pytestmark = pytest.mark.timeout(300)

STRIPE_EVENT = json.dumps({"id": "evt_1", "object": "event", "type": "invoice.paid"}).encode()
BINARY = bytes(range(256))


@pytest.fixture
def tail(tmp_path):
    runs: list[Cli] = []

    def start(*args: str) -> Cli:
        run = Cli(["tail", *args], client_env(tmp_path / "state"), tmp_path)
        runs.append(run)
        run.wait_for(lambda r: "hookscope: live stream: on" in r.err, "the live stream")
        return run

    yield start
    for run in runs:
        run.stop(signal.SIGKILL)


def send_providers(server, bin_id: str) -> None:
    """A GitHub push, a Stripe event, a Shopify order, a binary upload, and an escape sequence."""
    base = f"/h/{bin_id}"
    push = b'{"ref": "refs/heads/main"}\r\n'
    send_raw(server.url, "POST", f"{base}/github", [
        ("Content-Type", "application/json"), ("X-GitHub-Event", "push"),
        ("Content-Length", str(len(push))),
    ], push)  # fmt: skip
    signature = stripe.WebhookSignature.generate_signature_header(STRIPE_EVENT.decode(), "whsec_x")
    send_raw(server.url, "POST", f"{base}/stripe", [
        ("Content-Type", "application/json"), ("Stripe-Signature", signature),
        ("Content-Length", str(len(STRIPE_EVENT))),
    ], STRIPE_EVENT)  # fmt: skip
    send_raw(server.url, "POST", f"{base}/shop?x=1", [
        ("X-Shopify-Topic", "orders/create"), ("Content-Length", "2"),
    ], b"{}")  # fmt: skip
    send_raw(server.url, "PUT", f"{base}/file", [
        ("Content-Type", "application/octet-stream"), ("Content-Length", str(len(BINARY))),
    ], BINARY)  # fmt: skip
    send_raw(server.url, "GET", f"{base}/esc", [("X-GitHub-Event", "push\x1b]0;owned\x07")])


def test_tail_prints_one_line_per_capture_with_the_provider_event(server, tail):
    bin_ = server.create_bin()
    run = tail(f"{server.url}/bins/{bin_['id']}#key={bin_['read_key']}", "--body")
    send_providers(server, bin_["id"])
    run.wait_for(lambda r: any(line.startswith("#5 ") for line in r.out), "five captures")
    lines = run.out
    assert lines[0] == "#1  POST /github  28 B  application/json  github:push"
    assert lines[1] == '    {"ref": "refs/heads/main"}'
    size = len(STRIPE_EVENT)
    assert lines[2] == f"#2  POST /stripe  {size} B  application/json  stripe:invoice.paid"
    assert lines[3] == "    " + STRIPE_EVENT.decode()
    assert lines[4] == "#3  POST /shop?x=1  2 B  -  shopify:orders/create"
    assert lines[5] == "    {}"
    assert lines[6] == "#4  PUT /file  256 B  application/octet-stream"
    assert lines[7] == "    base64: " + base64.b64encode(BINARY).decode()
    # The sender's escape sequence is shown, not played.
    assert lines[8] == "#5  GET /esc  0 B  -  github:push\\x1b]0;owned\\x07"
    assert "\x1b" not in run.transcript()
    assert bin_["read_key"] not in run.transcript()


def test_tail_json_gives_one_object_per_line_with_the_body(server, tail):
    bin_ = server.create_bin()
    run = tail(f"{server.url}/h/{bin_['id']}", "--key", bin_["read_key"], "--json", "--body")
    send_providers(server, bin_["id"])
    run.wait_for(lambda r: len(r.out) == 5, "five lines")
    records = run.records
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5]
    github, stripe_, shop, binary, _esc = records
    assert github["event"] == {"provider": "github", "name": "push"}
    assert github["body"] == '{"ref": "refs/heads/main"}\r\n'
    assert stripe_["event"] == {"provider": "stripe", "name": "invoice.paid"}
    assert stripe_["body"].encode() == STRIPE_EVENT
    assert (shop["path"], shop["query_string"], shop["size"]) == ("/shop", "x=1", 2)
    assert shop["content_type"] is None
    assert base64.b64decode(binary["body_base64"]) == BINARY
    assert "body" not in binary
    assert binary["method"] == "PUT" and binary["event"] is None


def test_tail_starts_with_the_next_capture_or_with_since(server, tail):
    bin_ = server.create_bin()
    for n in (1, 2, 3):
        send_raw(server.url, "POST", f"/h/{bin_['id']}/{n}", [("Content-Length", "0")])
    url = f"{server.url}/h/{bin_['id']}#key={bin_['read_key']}"
    new_only = tail(url, "--json")
    from_two = tail(url, "--json", "--since", "2")
    send_raw(server.url, "POST", f"/h/{bin_['id']}/4", [("Content-Length", "0")])
    from_two.wait_for(lambda r: len(r.out) == 3, "#2 to #4")
    new_only.wait_for(lambda r: len(r.out) == 1, "#4")
    assert [r["path"] for r in from_two.records] == ["/2", "/3", "/4"]
    assert [r["path"] for r in new_only.records] == ["/4"]
