"""Verification handshakes a new bin passes by itself, each from the provider's documentation."""

from __future__ import annotations

import json
from urllib.parse import quote_plus

import pytest

from app.ingest.respond import (
    DEFAULT,
    DEFAULT_RESPONDER,
    DEFAULT_SETTINGS,
    RequestView,
    Responder,
    apply,
)
from app.ingest.respond.limits import MAX_HANDSHAKE_BODY

SAFETY = [("Content-Security-Policy", "sandbox"), ("X-Content-Type-Options", "nosniff")]


def with_settings(**changes) -> Responder:
    return Responder(apply(DEFAULT_SETTINGS, changes))


def header(answer, name: str) -> str | None:
    return next((v for n, v in answer.headers if n.lower() == name.lower()), None)


def assert_echo(answer, name: str, challenge: str) -> None:
    assert answer.status == 200
    assert answer.body == challenge.encode()  # exactly: nothing appended, no newline
    assert header(answer, "Content-Type") == "text/plain"
    for pair in SAFETY:
        assert pair in answer.headers
    assert (answer.source, answer.handshake) == ("handshake", name)
    assert answer.to_record()["handshake"] == name


# https://api.slack.com/events/url_verification : Slack POSTs this JSON; "respond in plaintext
# with the challenge attribute value": HTTP 200 OK, Content-type: text/plain, the challenge.
SLACK = RequestView(
    "POST",
    "/slack/events",
    "",
    [["Content-Type", "application/json"], ["X-Slack-Request-Timestamp", "1531420618"]],
    json.dumps(
        {
            "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
    ).encode(),
)


def test_slack_url_verification():
    answer = DEFAULT_RESPONDER.respond(SLACK)
    assert_echo(answer, "slack", "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")


# https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks
# (Notification endpoint validation): Graph POSTs to {notificationUrl}?validationToken={token}
# with Content-Type: text/plain; the endpoint answers within 10 seconds with 200 OK,
# Content-Type text/plain, and the URL-decoded token as the body.
GRAPH_TOKEN = (
    "Validation: Testing client application reachability for subscription Request-Id: "
    "522a8e7e-096a-494c-aaf1-ac0dcfca45b7"
)
GRAPH = RequestView(
    "POST",
    "/graph",
    "validationToken=" + quote_plus(GRAPH_TOKEN),
    [["Content-Type", "text/plain; charset=utf-8"], ["Content-Length", "0"]],
    b"",
)


def test_microsoft_graph_validation_token_is_echoed_url_decoded():
    assert "+" in GRAPH.query_string and "%3A" in GRAPH.query_string
    assert_echo(DEFAULT_RESPONDER.respond(GRAPH), "graph", GRAPH_TOKEN)


# https://www.dropbox.com/developers/reference/webhooks (The verification request): a GET with a
# "challenge" query parameter (https://www.example.com/dropbox-webhook?challenge=abc123); echo it
# back, with Content-Type: text/plain and X-Content-Type-Options: nosniff.
DROPBOX = RequestView("GET", "/dropbox-webhook", "challenge=abc123", [], b"")


def test_dropbox_challenge_with_nosniff():
    answer = DEFAULT_RESPONDER.respond(DROPBOX)
    assert_echo(answer, "dropbox", "abc123")
    assert header(answer, "X-Content-Type-Options") == "nosniff"


# https://dev.twitch.tv/docs/eventsub/handling-webhook-events/#responding-to-a-challenge-request
# The Twitch-Eventsub-Message-Type header is webhook_callback_verification; the answer is 200,
# the raw challenge value as the body, Content-Type text/plain.
TWITCH = RequestView(
    "POST",
    "/twitch",
    "",
    [
        ["Twitch-Eventsub-Message-Id", "e76c6bd4-55c9-4987-8304-da1588d8988b"],
        ["Twitch-Eventsub-Message-Retry", "0"],
        ["Twitch-Eventsub-Message-Type", "webhook_callback_verification"],
        ["Twitch-Eventsub-Message-Signature", "sha256=f56bf6ce06a1adf46fa27831d7d15d"],
        ["Twitch-Eventsub-Message-Timestamp", "2019-11-16T10:11:12.634234626Z"],
        ["Twitch-Eventsub-Subscription-Type", "channel.follow"],
        ["Twitch-Eventsub-Subscription-Version", "1"],
        ["Content-Type", "application/json"],
    ],
    json.dumps(
        {
            "challenge": "pogchamp-kappa-360noscope-vohiyo",
            "subscription": {
                "id": "f1c2a387-161a-49f9-a165-0f21d7a4e1c4",
                "status": "webhook_callback_verification_pending",
                "type": "channel.follow",
                "version": "1",
                "cost": 1,
                "condition": {"broadcaster_user_id": "12826"},
                "transport": {
                    "method": "webhook",
                    "callback": "https://example.com/webhooks/callback",
                },
                "created_at": "2019-11-16T10:11:12.634234626Z",
            },
        }
    ).encode(),
)


def test_twitch_eventsub_callback_verification():
    assert_echo(DEFAULT_RESPONDER.respond(TWITCH), "twitch", "pogchamp-kappa-360noscope-vohiyo")


# https://developers.facebook.com/docs/graph-api/webhooks/getting-started#verification-requests
# GET ...?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock; check that
# hub.verify_token matches the Verify Token set in the App Dashboard, answer with hub.challenge.
META = RequestView(
    "GET",
    "/webhooks",
    "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock",
    [],
    b"",
)


def test_meta_verification_without_a_verify_token_set_echoes():
    assert_echo(DEFAULT_RESPONDER.respond(META), "meta", "1158201444")


def test_meta_verification_checks_the_verify_token_when_the_bin_sets_one():
    r = with_settings(handshakes={"meta_verify_token": "meatyhamhock"})
    assert_echo(r.respond(META), "meta", "1158201444")


@pytest.mark.parametrize(
    "query",
    [
        "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=wrong",
        "hub.mode=subscribe&hub.challenge=1158201444",
    ],
)
def test_meta_verification_with_the_wrong_token_is_refused_plainly(query):
    r = with_settings(handshakes={"meta_verify_token": "meatyhamhock"})
    answer = r.respond(RequestView("GET", "/webhooks", query, [], b""))
    assert answer.status == 403
    assert b"handshakes.meta_verify_token" in answer.body
    assert b"1158201444" not in answer.body
    assert answer.handshake == "meta"


# https://developers.zoom.us/docs/api/webhooks/#validate-your-webhook-endpoint
# Zoom POSTs {"payload": {"plainToken": ...}, "event_ts": ..., "event": "endpoint.url_validation"};
# the answer, within 3 seconds, is 200 with JSON {"plainToken": ..., "encryptedToken": ...}, the
# HMAC SHA-256 of plainToken keyed with the app's secret token, in hex.
ZOOM = RequestView(
    "POST",
    "/zoom",
    "",
    [["Content-Type", "application/json; charset=utf-8"], ["User-Agent", "Zoom Marketplace/1.0a"]],
    b'{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,'
    b'"event":"endpoint.url_validation"}',
)
# printf 'qgg8vlvZRS6UYooatFL8Aw' | openssl dgst -sha256 -hmac 'secretValueTest'
ZOOM_ENCRYPTED = "70c1f2e2e6ca2d39297490d1f9142c7d701415ea8e6151f6562a08fa657a40ff"


def test_zoom_url_validation_with_the_secret_token():
    r = with_settings(handshakes={"zoom_secret": "secretValueTest"})
    answer = r.respond(ZOOM)
    assert answer.status == 200
    assert header(answer, "Content-Type") == "application/json"
    assert json.loads(answer.body) == {
        "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
        "encryptedToken": ZOOM_ENCRYPTED,
    }
    assert (answer.source, answer.handshake) == ("handshake", "zoom")
    for pair in SAFETY:
        assert pair in answer.headers


def test_zoom_url_validation_without_a_secret_says_which_setting_is_missing():
    answer = DEFAULT_RESPONDER.respond(ZOOM)
    assert answer.status == 403
    assert b"handshakes.zoom_secret" in answer.body
    assert answer.handshake == "zoom"


@pytest.mark.parametrize("request_", [SLACK, GRAPH, DROPBOX, TWITCH, META, ZOOM])
def test_a_bin_can_turn_handshakes_off(request_):
    r = with_settings(handshakes={"enabled": False, "zoom_secret": "s"})
    answer = r.respond(request_)
    assert answer is DEFAULT
    assert answer.handshake is None


def test_a_rule_the_user_wrote_wins_over_a_handshake():
    r = with_settings(
        rules=[
            {"name": "refuse slack", "when": [{"path": "/slack/*"}], "response": {"status": 500}}
        ]
    )
    answer = r.respond(SLACK)
    assert (answer.status, answer.rule, answer.handshake) == (500, "refuse slack", None)


def test_a_handshake_wins_over_the_bins_own_default_response():
    r = with_settings(response={"status": 201, "body": "created"})
    assert_echo(r.respond(DROPBOX), "dropbox", "abc123")
    assert r.respond(RequestView("GET", "/other")).status == 201


def body_json(value) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize(
    "request_",
    [
        # Twitch's other message types carry the same header with another value.
        RequestView(
            "POST",
            "/twitch",
            "",
            [["Twitch-Eventsub-Message-Type", "notification"]],
            body_json({"challenge": "x", "event": {}}),
        ),
        # A challenge without Twitch's header is not Twitch's.
        RequestView("POST", "/", "", [], body_json({"challenge": "x"})),
        # Slack's ordinary events.
        RequestView("POST", "/", "", [], body_json({"type": "event_callback", "challenge": "x"})),
        RequestView("POST", "/", "", [], body_json({"type": "url_verification", "challenge": 5})),
        RequestView("POST", "/", "", [], body_json({"type": "url_verification", "challenge": ""})),
        # Zoom's ordinary events, and a validation with no token.
        RequestView("POST", "/", "", [], body_json({"event": "meeting.started", "payload": {}})),
        RequestView("POST", "/", "", [], body_json({"event": "endpoint.url_validation"})),
        # Graph validates with POST, Dropbox and Meta with GET.
        RequestView("GET", "/", "validationToken=abc", [], b""),
        RequestView("POST", "/", "challenge=abc", [], b""),
        RequestView("POST", "/", "hub.mode=subscribe&hub.challenge=1", [], b""),
        RequestView("GET", "/", "challenge=", [], b""),
        RequestView("GET", "/", "hub.mode=unsubscribe&hub.challenge=1", [], b""),
        RequestView("GET", "/", "xchallenge=abc", [], b""),
        # Handshake bodies are small: a big body is never looked into.
        RequestView(
            "POST",
            "/",
            "",
            [],
            body_json(
                {"type": "url_verification", "challenge": "x", "pad": "x" * MAX_HANDSHAKE_BODY}
            ),
        ),
    ],
)
def test_ordinary_requests_are_not_taken_for_handshakes(request_):
    assert DEFAULT_RESPONDER.respond(request_) is DEFAULT


def test_an_echo_is_inert_in_a_browser():
    hostile = RequestView("GET", "/", "challenge=%3Cscript%3Ealert(1)%3C/script%3E", [], b"")
    answer = DEFAULT_RESPONDER.respond(hostile)
    assert answer.body == b"<script>alert(1)</script>"
    assert header(answer, "Content-Type") == "text/plain"
    assert header(answer, "Content-Security-Policy") == "sandbox"
    assert header(answer, "X-Content-Type-Options") == "nosniff"
