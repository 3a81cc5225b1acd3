"""What a bin answers, through a real gunicorn: custom responses, rules, templates, handshakes,
failure rehearsal, CORS, and what each capture shows it was answered."""

from __future__ import annotations

import json
import random
import re
import select
import socket
import threading
import time
import uuid
from datetime import datetime
from urllib.parse import quote_plus, urlsplit

import pytest
import requests
from harness import Gunicorn
from sqlalchemy import create_engine, text

from app.ingest.respond.headers import REFUSED, REFUSED_PREFIXES

SANDBOX = {"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"}
ISO_UTC_MICROS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def patch(server, bin_id: str, settings: dict) -> requests.Response:
    return requests.patch(
        f"{server.url}/api/v1/bins/{bin_id}", json=settings, auth=server.auth, timeout=10
    )


def configure(server, settings: dict) -> dict:
    """A new bin of this server with these response settings."""
    created = server.create_bin()
    changed = patch(server, created["id"], settings)
    assert changed.status_code == 200, changed.text
    return changed.json()


def get_json(server, path: str, **params) -> dict:
    response = requests.get(server.url + path, params=params, auth=server.auth, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def detail(server, bin_id: str, seq) -> dict:
    return get_json(server, f"/api/v1/bins/{bin_id}/requests/{seq}")


def answer_of(server, bin_id: str, seq) -> dict:
    """What the detail view says a capture was answered, once its note is written."""
    for _ in range(200):
        shown = detail(server, bin_id, seq)["answer"]
        if shown["recorded"] and shown["sent_at"] is not None:
            return shown
        requests.get(server.url + "/healthz", timeout=5)  # a round trip: the writer runs on
    raise AssertionError(f"the answer to #{seq} was never recorded: {shown}")


def assert_sandboxed(response: requests.Response) -> None:
    for name, value in SANDBOX.items():
        assert response.headers[name] == value


# 1. A custom response per bin


def test_a_custom_response_is_sent_and_shown_with_the_capture(server):
    bin_ = configure(
        server,
        {
            "response": {
                "status": 201,
                "headers": [["X-Hook", "ok"], ["X-Hook", "twice"]],
                "body": "created",
                "content_type": "text/plain",
                "delay_ms": 0,
            }
        },
    )
    assert bin_["response"]["status"] == 201
    sent = requests.post(bin_["capture_url"] + "/orders?x=1", data=b"{}", timeout=10)
    assert sent.status_code == 201
    assert sent.content == b"created"
    assert sent.headers["Content-Type"] == "text/plain"
    assert sent.raw.headers.getlist("X-Hook") == ["ok", "twice"]
    assert_sandboxed(sent)
    seq = sent.headers["X-Hookscope-Seq"]
    shown = answer_of(server, bin_["id"], seq)
    assert shown["status"] == 201
    assert shown["body"] == "created"
    assert shown["source"] == "response"
    assert ["X-Hook", "ok"] in shown["headers"] and ["X-Hook", "twice"] in shown["headers"]
    assert ["Content-Security-Policy", "sandbox"] in shown["headers"]
    assert ["X-Hookscope-Seq", seq] in shown["headers"]
    assert ["Content-Length", "7"] in shown["headers"]
    assert ISO_UTC_MICROS.fullmatch(shown["sent_at"])
    assert shown["sent_at"] >= detail(server, bin_["id"], seq)["received_at"]
    [summary] = get_json(server, f"/api/v1/bins/{bin_['id']}/requests")["requests"]
    assert summary["status"] == 201


def test_a_binary_body_and_no_body_statuses(server):
    bin_ = configure(server, {"response": {"body_base64": "AAH/", "content_type": "image/x-x"}})
    sent = requests.get(bin_["capture_url"], timeout=10)
    assert (sent.status_code, sent.content) == (200, b"\x00\x01\xff")
    shown = answer_of(server, bin_["id"], sent.headers["X-Hookscope-Seq"])
    assert (shown["body"], shown["body_encoding"]) == ("AAH/", "base64")

    patch(server, bin_["id"], {"response": {"status": 204}})
    sent = requests.delete(bin_["capture_url"], timeout=10)
    assert sent.status_code == 204 and sent.content == b""
    assert "Content-Length" not in sent.headers and "Content-Type" not in sent.headers
    assert_sandboxed(sent)


def test_response_null_goes_back_to_the_default_answer(server):
    bin_ = configure(server, {"response": {"status": 202, "body": "queued"}})
    assert requests.post(bin_["capture_url"], timeout=10).status_code == 202
    back = patch(server, bin_["id"], {"response": None}).json()
    assert back["response"] is None
    sent = requests.post(bin_["capture_url"], timeout=10)
    assert (sent.status_code, sent.text) == (200, "ok\n")
    assert sent.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    shown = detail(server, bin_["id"], sent.headers["X-Hookscope-Seq"])["answer"]
    assert (shown["status"], shown["source"], shown["recorded"]) == (200, "default", False)
    assert shown["body"] == "ok\n"


def test_a_head_request_gets_the_headers_without_the_body(server):
    bin_ = configure(server, {"response": {"status": 200, "body": "four"}})
    sent = requests.head(bin_["capture_url"], timeout=10)
    assert sent.headers["Content-Length"] == "4" and sent.content == b""
    shown = answer_of(server, bin_["id"], sent.headers["X-Hookscope-Seq"])
    assert shown["body"] == "" and ["Content-Length", "4"] in shown["headers"]


@pytest.mark.parametrize(
    ("settings", "code", "field"),
    [
        ({"response": {"status": 99}}, "bad_status", "response.status"),
        ({"response": {"status": 101}}, "bad_status", "response.status"),
        ({"response": {"delay_ms": 30_001}}, "bad_delay", "response.delay_ms"),
        ({"response": {"headers": [["X Bad", "v"]]}}, "bad_header", "response.headers[0]"),
        ({"response": {"body": "{{ nope }}"}}, "bad_template", "response.body"),
        ({"rules": [{"when": [{"path": "x"}]}]}, "bad_rule", "rules[0].response"),
        (
            {"rules": [{"when": [{"colour": "red"}], "response": {}}]},
            "bad_condition",
            "rules[0].when[0]",
        ),
    ],
)
def test_refusals_name_the_field(server, settings, code, field):
    created = server.create_bin()
    refused = patch(server, created["id"], settings)
    assert refused.status_code == 400
    assert refused.json()["error"] == code
    assert refused.json()["field"] == field
    assert refused.json()["message"]


# 8. Safety: refused headers, the sandbox


@pytest.mark.parametrize(
    "name", [*REFUSED, *(prefix + "allow-origin" for prefix in REFUSED_PREFIXES)]
)
def test_every_refused_header_is_refused_when_saved(server, name):
    created = server.create_bin()
    header = name.title()
    headers = [["X-Fine", "1"], [header, "x"]]
    refused = patch(server, created["id"], {"response": {"headers": headers}})
    assert refused.status_code == 400
    body = refused.json()
    assert (body["error"], body["field"]) == ("refused_header", "response.headers[1]")
    assert f"{header} cannot be set" in body["message"]
    # The message lists everything refused, so nobody has to find out one at a time.
    for listed in ("Set-Cookie", "Strict-Transport-Security", "Connection", "X-Frame-Options"):
        assert listed in body["message"]
    # Nothing was saved.
    assert get_json(server, f"/api/v1/bins/{created['id']}")["response"] is None


def test_a_hostile_body_is_served_inert(server):
    page = "<script>document.title='owned'</script>"
    bin_ = configure(server, {"response": {"body": page, "content_type": "text/html"}})
    sent = requests.get(bin_["capture_url"], timeout=10)
    assert sent.text == page
    assert_sandboxed(sent)


# 2. Rules


def test_rules_first_match_wins_with_and_of_conditions(server):
    failed = {"status": 500, "body": "payment failed"}
    bin_ = configure(
        server,
        {
            "response": {"status": 202, "body": "default"},
            "rules": [
                {
                    "name": "failed payments",
                    "when": [
                        {"method": "POST"},
                        {"path": "/stripe/*"},
                        {"json": "data.object.status", "equals": "failed"},
                    ],
                    "response": failed,
                },
                {
                    "name": "github pushes",
                    "when": [{"header": "X-GitHub-Event", "value": "pu*"}],
                    "response": {"status": 200, "body": "push"},
                },
                {
                    "name": "by query",
                    "when": [{"query": "type", "value": "invoice.*"}],
                    "response": {"status": 409},
                },
                {
                    "name": "any stripe",
                    "when": [{"path": "/stripe/*"}],
                    "response": {"status": 208},
                },
            ],
        },
    )
    url = bin_["capture_url"]
    failing = {"data": {"object": {"status": "failed"}}}
    cases = [
        (requests.post(url + "/stripe/events", json=failing, timeout=10), 500, 0),
        (requests.put(url + "/stripe/events", json=failing, timeout=10), 208, 3),
        (requests.post(url + "/stripe/x", json={"data": {}}, timeout=10), 208, 3),
        (requests.post(url, headers={"X-GitHub-Event": "push"}, timeout=10), 200, 1),
        (requests.get(url + "?type=invoice.paid", timeout=10), 409, 2),
        (requests.get(url + "?type=charge", timeout=10), 202, None),
    ]
    names = [rule["name"] for rule in bin_["rules"]]
    for sent, status, index in cases:
        assert sent.status_code == status
        assert_sandboxed(sent)
        shown = answer_of(server, bin_["id"], sent.headers["X-Hookscope-Seq"])
        assert shown["rule_index"] == index
        assert shown["rule"] == (None if index is None else names[index])
        assert shown["source"] == ("response" if index is None else "rule")


def store_settings_directly(server, bin_id: str, stored: str) -> None:
    """Change a bin's settings as another process would: straight in the database."""
    url = server.env["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE bins SET response_settings = :s,"
                    " settings_version = settings_version + 1 WHERE id = :id"
                ),
                {"s": stored, "id": bin_id},
            )
    finally:
        engine.dispose()


def test_a_change_another_process_made_is_answered_at_once(server):
    """The answer comes from the settings the capture's own transaction read, not a cache."""
    bin_ = configure(server, {"response": {"status": 201}})
    assert requests.post(bin_["capture_url"], timeout=10).status_code == 201
    settings = json.loads(json.dumps(SETTINGS_418))
    store_settings_directly(server, bin_["id"], json.dumps(settings))
    assert requests.post(bin_["capture_url"], timeout=10).status_code == 418


SETTINGS_418 = {
    "version": 1,
    "response": {"status": 418},
    "rules": [],
    "handshakes": {"enabled": True, "meta_verify_token_sha256": None, "zoom_secret": None},
    "cors": {"enabled": False, "origins": ["*"]},
}


def test_settings_a_newer_check_refuses_answer_the_default_and_say_so(server):
    bin_ = configure(server, {"response": {"status": 201}})
    refused = {"version": 1, "response": {"headers": [["Set-Cookie", "a=b"]]}}
    store_settings_directly(server, bin_["id"], json.dumps(refused))
    sent = requests.post(bin_["capture_url"], timeout=10)
    assert (sent.status_code, sent.text) == (200, "ok\n")
    shown = get_json(server, f"/api/v1/bins/{bin_['id']}")
    assert "no longer pass" in shown["response_problem"]
    assert "a bin's response settings no longer pass the checks" in server.log_text()


# 3. Templates


EVERY_VARIABLE = (
    "{{ method }}|{{ path }}|{{ query.q }}|{{ header('X-Name') }}|{{ json.event }}"
    "|{{ jsonpath('data.items[1].id') }}|{{ seq }}|{{ received_at }}|{{ uuid() }}"
)


def test_templates_take_every_part_of_the_request(server):
    bin_ = configure(
        server,
        {
            "response": {
                "status": 200,
                "headers": [["X-Echo", "{{ header('X-Name') }}-{{ seq }}"]],
                "body": EVERY_VARIABLE,
            }
        },
    )
    bodies = []
    for _ in range(2):
        sent = requests.post(
            bin_["capture_url"] + "/a/b?q=find+me",
            json={"event": "paid", "data": {"items": [{"id": 1}, {"id": "second"}]}},
            headers={"X-Name": "caf\u00e9".encode()},
            timeout=10,
        )
        assert sent.status_code == 200
        seq = sent.headers["X-Hookscope-Seq"]
        stored = detail(server, bin_["id"], seq)
        method, path, q, name, event, item, seq_, received, fresh = sent.text.split("|")
        assert (method, path, q, name, event, item) == (
            "POST",
            "/a/b",
            "find me",
            "caf\u00e9",
            "paid",
            "second",
        )
        assert seq_ == seq
        assert received == stored["received_at"]
        assert uuid.UUID(fresh).version == 4
        assert sent.headers["X-Echo"].encode("latin-1").decode() == f"caf\u00e9-{seq}"
        assert answer_of(server, bin_["id"], seq)["body"] == sent.text
        bodies.append(fresh)
    assert bodies[0] != bodies[1]


def test_a_failing_template_answers_500_and_the_capture_is_kept(server):
    bin_ = configure(server, {"response": {"status": 200, "body": "{{ json.n - json.s }}"}})
    sent = requests.post(bin_["capture_url"], json={"n": 1, "s": "x"}, timeout=10)
    assert sent.status_code == 500
    assert sent.text.startswith("the response template failed: ")
    assert sent.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert_sandboxed(sent)
    seq = sent.headers["X-Hookscope-Seq"]
    stored = detail(server, bin_["id"], seq)
    assert stored["body"]["size"] == len(b'{"n": 1, "s": "x"}')
    shown = answer_of(server, bin_["id"], seq)
    assert shown["status"] == 500 and shown["template_error"]


def test_a_template_cannot_reach_python_internals(server):
    created = server.create_bin()
    for written in (
        "{{ ''.__class__ }}",
        "{{ method.upper() }}",
        "{{ config }}",
        "{{ json['_x'] }}",
    ):
        refused = patch(server, created["id"], {"response": {"body": written}})
        assert refused.status_code == 400
        body = refused.json()
        assert (body["error"], body["field"]) == ("bad_template", "response.body")
    # What cannot be told at save time (a name the request supplies) reaches data only.
    hostile = (
        "[{{ method[header('X-Attr')] }}][{{ json[query.k] }}][{{ path[header('X-Attr')] }}]"
        "[{{ header(header('X-Attr')) }}][{{ json.o }}]"
    )
    bin_ = configure(server, {"response": {"body": hostile}})
    sent = requests.post(
        bin_["capture_url"] + "?k=__class__",
        json={"o": {"__class__": 1}},
        headers={"X-Attr": "__class__"},
        timeout=10,
    )
    assert sent.status_code == 200
    assert sent.text == '[][][][][{"__class__":1}]'


# 4. Handshakes that pass by themselves (requests as each provider documents them; the
# documentation is cited beside the same requests in tests/test_respond_handshakes.py)


SLACK_CHALLENGE = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
GRAPH_TOKEN = (
    "Validation: Testing client application reachability for subscription Request-Id: "
    "522a8e7e-096a-494c-aaf1-ac0dcfca45b7"
)
TWITCH_HEADERS = {
    "Twitch-Eventsub-Message-Id": "e76c6bd4-55c9-4987-8304-da1588d8988b",
    "Twitch-Eventsub-Message-Retry": "0",
    "Twitch-Eventsub-Message-Type": "webhook_callback_verification",
    "Twitch-Eventsub-Message-Signature": "sha256=f56bf6ce06a1adf46fa27831d7d15d",
    "Twitch-Eventsub-Message-Timestamp": "2019-11-16T10:11:12.634234626Z",
    "Twitch-Eventsub-Subscription-Type": "channel.follow",
    "Twitch-Eventsub-Subscription-Version": "1",
}
TWITCH_BODY = {
    "challenge": "pogchamp-kappa-360noscope-vohiyo",
    "subscription": {
        "id": "f1c2a387-161a-49f9-a165-0f21d7a4e1c4",
        "status": "webhook_callback_verification_pending",
        "type": "channel.follow",
        "version": "1",
        "cost": 1,
        "condition": {"broadcaster_user_id": "12826"},
        "transport": {"method": "webhook", "callback": "https://example.com/webhooks/callback"},
        "created_at": "2019-11-16T10:11:12.634234626Z",
    },
}
ZOOM_BODY = (
    b'{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,'
    b'"event":"endpoint.url_validation"}'
)
META_QUERY = "?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock"


def slack(url: str) -> requests.Response:
    body = {
        "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
        "challenge": SLACK_CHALLENGE,
        "type": "url_verification",
    }
    return requests.post(url + "/slack/events", json=body, timeout=10)


def graph(url: str) -> requests.Response:
    return requests.post(
        url + "/graph?validationToken=" + quote_plus(GRAPH_TOKEN),
        headers={"Content-Type": "text/plain; charset=utf-8"},
        timeout=10,
    )


def dropbox(url: str) -> requests.Response:
    return requests.get(url + "/dropbox-webhook?challenge=abc123", timeout=10)


def twitch(url: str) -> requests.Response:
    return requests.post(url + "/twitch", json=TWITCH_BODY, headers=TWITCH_HEADERS, timeout=10)


def meta(url: str) -> requests.Response:
    return requests.get(url + "/webhooks" + META_QUERY, timeout=10)


def zoom(url: str) -> requests.Response:
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Zoom Marketplace/1.0a",
    }
    return requests.post(url + "/zoom", data=ZOOM_BODY, headers=headers, timeout=10)


ECHOES = [
    (slack, "slack", SLACK_CHALLENGE),
    (graph, "graph", GRAPH_TOKEN),
    (dropbox, "dropbox", "abc123"),
    (twitch, "twitch", "pogchamp-kappa-360noscope-vohiyo"),
    (meta, "meta", "1158201444"),
]


@pytest.mark.parametrize(("send", "name", "challenge"), ECHOES, ids=[e[1] for e in ECHOES])
def test_a_new_bin_passes_each_handshake_by_itself(server, send, name, challenge):
    bin_ = server.create_bin()
    sent = send(bin_["capture_url"])
    assert sent.status_code == 200
    assert sent.content == challenge.encode()  # exactly: no trailing newline
    assert sent.headers["Content-Type"] == "text/plain"
    assert sent.headers["X-Content-Type-Options"] == "nosniff"
    shown = answer_of(server, bin_["id"], sent.headers["X-Hookscope-Seq"])
    assert (shown["source"], shown["handshake"], shown["body"]) == ("handshake", name, challenge)


@pytest.mark.parametrize(("send", "name", "challenge"), ECHOES, ids=[e[1] for e in ECHOES])
def test_a_bin_can_turn_handshakes_off(server, send, name, challenge):
    bin_ = configure(server, {"handshakes": {"enabled": False}})
    assert bin_["handshakes"]["enabled"] is False
    sent = send(bin_["capture_url"])
    assert (sent.status_code, sent.text) == (200, "ok\n")


def test_zoom_is_answered_with_the_bins_secret_token(server):
    bin_ = server.create_bin()
    without = zoom(bin_["capture_url"])
    assert without.status_code == 403 and "handshakes.zoom_secret" in without.text
    shown = configure(server, {"handshakes": {"zoom_secret": "secretValueTest"}})
    assert shown["handshakes"]["zoom_secret_set"] is True
    assert "secretValueTest" not in json.dumps(shown)  # never shown once saved
    sent = zoom(shown["capture_url"])
    assert sent.status_code == 200
    assert sent.headers["Content-Type"] == "application/json"
    # printf 'qgg8vlvZRS6UYooatFL8Aw' | openssl dgst -sha256 -hmac 'secretValueTest'
    assert sent.json() == {
        "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
        "encryptedToken": "70c1f2e2e6ca2d39297490d1f9142c7d701415ea8e6151f6562a08fa657a40ff",
    }
    assert answer_of(server, shown["id"], sent.headers["X-Hookscope-Seq"])["handshake"] == "zoom"


def test_meta_checks_the_verify_token_when_the_bin_sets_one(server):
    bin_ = configure(server, {"handshakes": {"meta_verify_token": "meatyhamhock"}})
    assert bin_["handshakes"]["meta_verify_token_set"] is True
    assert meta(bin_["capture_url"]).text == "1158201444"
    wrong = requests.get(
        bin_["capture_url"] + "?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=no",
        timeout=10,
    )
    assert wrong.status_code == 403
    assert "1158201444" not in wrong.text and "meta_verify_token" in wrong.text


def test_with_ingest_protection_a_handshake_without_credentials_gets_401(server):
    created = server.create_bin()
    protected = patch(server, created["id"], {"ingest_auth": {"type": "bearer", "token": "tkn"}})
    assert protected.status_code == 200
    sent = slack(created["capture_url"])
    assert sent.status_code == 401 and sent.headers["WWW-Authenticate"] == "Bearer"
    shown = answer_of(server, created["id"], sent.headers["X-Hookscope-Seq"])
    assert (shown["status"], shown["source"], shown["handshake"]) == (401, "ingest_auth", None)


# 5. Failure rehearsal


def test_the_first_n_of_each_delivery_fail_then_the_rest_succeed(server):
    bin_ = configure(
        server,
        {
            "response": {
                "status": 200,
                "body": "ok",
                "failure": {"first": 2, "per_header": "X-Delivery-Id", "status": 503},
            }
        },
    )
    url = bin_["capture_url"]
    got = {"d1": [], "d2": []}
    for delivery in ["d1", "d2", "d1", "d1", "d2", "d2", "d1"]:
        sent = requests.post(url, headers={"X-Delivery-Id": delivery}, timeout=10)
        assert_sandboxed(sent)
        got[delivery].append(sent.status_code)
        if sent.status_code == 503:
            assert "failing on purpose" in sent.text
    assert got == {"d1": [503, 503, 200, 200], "d2": [503, 503, 200]}
    # The list shows one delivery's attempts together, newest first, with what each got.
    attempts = get_json(server, f"/api/v1/bins/{bin_['id']}/requests", delivery="d1")["requests"]
    assert [a["status"] for a in attempts] == [200, 200, 503, 503]
    assert {a["delivery_id"] for a in attempts} == {"d1"}
    shown = answer_of(server, bin_["id"], attempts[-1]["seq"])
    assert shown["failure"].startswith("failing on purpose: request 1 of the first 2")
    assert shown["delivery_id"] == "d1"


def test_the_list_refuses_delivery_with_a_search(server):
    bin_ = server.create_bin()
    refused = requests.get(
        f"{server.url}/api/v1/bins/{bin_['id']}/requests",
        params={"delivery": "d1", "q": "x"},
        auth=server.auth,
        timeout=10,
    )
    assert refused.status_code == 400 and "delivery" in refused.json()["message"]


def test_a_rehearsed_timeout_closes_the_connection_without_an_answer(server):
    bin_ = configure(
        server,
        {"response": {"status": 200, "failure": {"first": 1, "timeout": True, "delay_ms": 300}}},
    )
    with pytest.raises(requests.ConnectionError):
        requests.post(bin_["capture_url"], data=b"first", timeout=10)
    assert requests.post(bin_["capture_url"], data=b"second", timeout=10).status_code == 200
    [second, first] = get_json(server, f"/api/v1/bins/{bin_['id']}/requests")["requests"]
    assert (first["status"], second["status"]) == (0, 200)
    shown = answer_of(server, bin_["id"], first["seq"])
    assert (shown["hang_up"], shown["status"], shown["headers"]) == (True, None, [])
    assert "time out" in shown["failure"]


def test_a_delayed_answer_shows_it_waits_then_when_it_went_out(server):
    delay = 3.0
    bin_ = configure(server, {"response": {"status": 202, "delay_ms": int(delay * 1000)}})
    results: list[requests.Response] = []
    started = time.monotonic()
    sender = threading.Thread(
        target=lambda: results.append(requests.post(bin_["capture_url"], timeout=30))
    )
    sender.start()
    try:
        waiting = answer_noted(server, bin_["id"], 1)
        # Read before the server could have ended its delay: the answer is shown, not yet sent.
        if time.monotonic() - started < delay:
            assert (waiting["status"], waiting["sent_at"]) == (202, None)
    finally:
        sender.join()
    assert results[0].status_code == 202
    shown = answer_of(server, bin_["id"], 1)
    received = detail(server, bin_["id"], 1)["received_at"]
    waited = parse_time(shown["sent_at"]) - parse_time(received)
    assert waited.total_seconds() >= delay
    assert shown["delay_ms"] == delay * 1000


def answer_noted(server, bin_id: str, seq) -> dict:
    """The detail view's answer once a note of it is written (sent or not)."""
    for _ in range(200):
        listed = get_json(server, f"/api/v1/bins/{bin_id}/requests")["requests"]
        if listed:
            shown = detail(server, bin_id, seq)["answer"]
            if shown["recorded"]:
                return shown
        requests.get(server.url + "/healthz", timeout=5)
    raise AssertionError(f"no answer was noted for #{seq}")


def parse_time(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """A server whose percentage failures draw from a seeded generator."""
    workdir = tmp_path_factory.mktemp("seeded")
    with Gunicorn(workdir, {"HOOKSCOPE_FAILURE_SEED": "1234"}) as running:
        yield running


def test_a_percentage_of_requests_fail_as_the_seed_says(seeded):
    bin_ = configure(
        seeded,
        {"response": {"status": 200, "failure": {"percent": 40, "status": 500}}},
    )
    got = [requests.post(bin_["capture_url"], timeout=10).status_code for _ in range(30)]
    draws = random.Random(1234)
    assert got == [500 if draws.random() * 100 < 40 else 200 for _ in range(30)]
    assert 0 < got.count(500) < 30


# 7. CORS


def test_cors_is_off_by_default(server):
    bin_ = server.create_bin()
    preflight = requests.options(
        bin_["capture_url"],
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "PUT"},
        timeout=10,
    )
    assert preflight.status_code == 200
    assert "Access-Control-Allow-Origin" not in preflight.headers


def test_with_cors_on_preflights_are_answered_and_recorded(server):
    bin_ = configure(server, {"cors": {"enabled": True, "origins": ["https://app.example.com"]}})
    assert bin_["cors"] == {"enabled": True, "origins": ["https://app.example.com"]}
    preflight = requests.options(
        bin_["capture_url"] + "/api",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-type, x-trace",
        },
        timeout=10,
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert preflight.headers["Access-Control-Allow-Methods"] == "PUT"
    assert preflight.headers["Access-Control-Allow-Headers"] == "content-type, x-trace"
    assert "Access-Control-Allow-Credentials" not in preflight.headers
    shown = answer_of(server, bin_["id"], preflight.headers["X-Hookscope-Seq"])
    assert shown["source"] == "preflight"
    sent = requests.put(
        bin_["capture_url"] + "/api", headers={"Origin": "https://app.example.com"}, timeout=10
    )
    assert sent.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    elsewhere = requests.put(
        bin_["capture_url"], headers={"Origin": "https://evil.example"}, timeout=10
    )
    assert "Access-Control-Allow-Origin" not in elsewhere.headers
    listed = get_json(server, f"/api/v1/bins/{bin_['id']}/requests")["requests"]
    assert [r["method"] for r in listed] == ["PUT", "PUT", "OPTIONS"]


def test_a_delayed_bin_does_not_hold_up_other_bins(fresh_server):
    """200 captures held by a bin that answers after 10 s; another bin's captures meanwhile are
    all stored and answered, before any of the held ones is."""
    server = fresh_server.start()
    slow = configure(server, {"response": {"status": 202, "delay_ms": 10_000}})
    fast = server.create_bin()
    with requests.Session() as session:
        # Size the other bin's work from this machine's speed: about a second's worth.
        started = time.monotonic()
        for _ in range(5):
            assert session.post(fast["capture_url"], data=b"warm", timeout=10).status_code == 200
        each = (time.monotonic() - started) / 5
        count = max(10, min(200, int(1.0 / each)))
        held = []
        target = urlsplit(slow["capture_url"]).path
        for i in range(200):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            head = f"POST {target}/{i} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\n\r\n"
            sock.sendall(head.encode() + b"held")
            held.append(sock)
        try:
            for _ in range(600):  # every held request is stored, and waits for its answer
                if get_json(server, f"/api/v1/bins/{slow['id']}")["request_count"] == 200:
                    break
                time.sleep(0.02)
            else:
                raise AssertionError("the held requests were not all stored")
            answered = [
                session.post(fast["capture_url"], data=str(i), timeout=10) for i in range(count)
            ]
            early, _, _ = select.select(held, [], [], 0)
            assert not early, "a held request was answered before the other bin's captures"
            assert [r.status_code for r in answered] == [200] * count
            stored = get_json(server, f"/api/v1/bins/{fast['id']}")["request_count"]
            assert stored == count + 5
            for sock in held:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = sock.recv(4096)
                    assert chunk, "a held request was closed without an answer"
                    head += chunk
                assert head.startswith(b"HTTP/1.1 202 ")
        finally:
            for sock in held:
                sock.close()
