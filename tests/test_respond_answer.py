"""What a capture is answered: the default costs nothing, custom answers are inert, CORS,
failure rehearsal, and what is stored with the capture."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pytest

from app.ingest.respond import (
    DEFAULT,
    DEFAULT_RESPONDER,
    DEFAULT_SETTINGS,
    RequestView,
    Responder,
    apply,
    responder_for,
    stored_text,
)

SANDBOX = ("Content-Security-Policy", "sandbox")
NOSNIFF = ("X-Content-Type-Options", "nosniff")


def with_settings(rng: random.Random | None = None, **changes) -> Responder:
    return Responder(apply(DEFAULT_SETTINGS, changes), rng=rng)


def names(answer) -> list[str]:
    return [name.lower() for name, _ in answer.headers]


def header(answer, name: str) -> str | None:
    return next((v for n, v in answer.headers if n.lower() == name.lower()), None)


# --- the default path ------------------------------------------------------------------------


def test_the_default_answer_is_todays():
    assert (DEFAULT.status, DEFAULT.body, DEFAULT.status_line) == (200, b"ok\n", "200 OK")
    assert DEFAULT.headers == (
        ("Content-Type", "text/plain; charset=utf-8"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    )
    assert (DEFAULT.delay_ms, DEFAULT.hang_up, DEFAULT.source) == (0, False, "default")


@pytest.mark.parametrize(
    "request_",
    [
        RequestView("POST", "/stripe", "", [["Content-Type", "application/json"]], b'{"a": 1}'),
        RequestView("GET", "/x", "a=1&b=2", [["Accept", "*/*"]], b""),
        RequestView("PUT", "", "", [], b"\x00\xff" * 1000),
        RequestView("OPTIONS", "/", "", [["Origin", "https://a.example"]], b""),
    ],
)
def test_a_bin_with_no_settings_answers_the_default_without_parsing_anything(request_, monkeypatch):
    monkeypatch.setattr("app.ingest.respond.view.parse_json", lambda b: pytest.fail("parsed"))
    monkeypatch.setattr("app.ingest.respond.view.parse_qsl", lambda q, **k: pytest.fail("parsed"))
    assert DEFAULT_RESPONDER.respond(request_) is DEFAULT
    choice = DEFAULT_RESPONDER.choose(request_)
    assert (choice.source, choice.counter_key) == ("default", None)
    assert DEFAULT_RESPONDER.answer(request_, choice) is DEFAULT


def test_nothing_stored_is_the_default_responder():
    assert responder_for(None) is DEFAULT_RESPONDER
    assert responder_for("") is DEFAULT_RESPONDER


def test_a_static_custom_answer_is_built_once_and_reused():
    r = with_settings(response={"status": 201, "body": "created"})
    view = RequestView("POST", "/")
    assert r.respond(view) is r.respond(RequestView("GET", "/other"))


def test_responders_are_cached_per_stored_settings_version():
    settings = apply(DEFAULT_SETTINGS, {"response": {"status": 202}})
    text = stored_text(settings)
    assert responder_for(text) is responder_for(text)
    assert responder_for(text).settings == settings
    changed = stored_text(apply(settings, {"response": {"status": 203}}))
    assert responder_for(changed) is not responder_for(text)
    assert responder_for(changed).respond(RequestView("GET")).status == 203


def test_needs_seq_tells_whether_the_answer_can_be_made_before_storing():
    assert not DEFAULT_RESPONDER.needs_seq
    assert not with_settings(response={"body": "{{ method }}"}).needs_seq
    assert with_settings(response={"headers": [["X-Seq", "{{ seq }}"]]}).needs_seq
    rule = {"when": [{"path": "/a"}], "response": {"body": "#{{ seq }}"}}
    assert with_settings(rules=[rule]).needs_seq


# --- custom answers --------------------------------------------------------------------------


def test_a_custom_answer_carries_the_safety_headers_once_after_the_bins_own():
    r = with_settings(
        response={
            "status": 201,
            "headers": [["X-Hook", "ok"], ["Location", "/h/next"]],
            "body": "created",
            "content_type": "text/plain",
            "delay_ms": 250,
        }
    )
    answer = r.respond(RequestView("POST", "/"))
    assert answer.headers == (
        ("X-Hook", "ok"),
        ("Location", "/h/next"),
        ("Content-Type", "text/plain"),
        SANDBOX,
        NOSNIFF,
    )
    assert (answer.status_line, answer.body, answer.delay_ms) == ("201 Created", b"created", 250)
    assert (answer.source, answer.rule) == ("response", None)


def test_no_content_has_no_content_type():
    answer = with_settings(response={"status": 204}).respond(RequestView("DELETE"))
    assert (answer.status, answer.body) == (204, b"")
    assert "content-type" not in names(answer)
    assert SANDBOX in answer.headers and NOSNIFF in answer.headers


def test_an_unusual_status_has_a_status_line():
    answer = with_settings(response={"status": 299}).respond(RequestView("GET"))
    assert answer.status_line == "299"


def test_what_is_stored_with_the_capture():
    r = with_settings(
        rules=[
            {
                "name": "binary",
                "when": [{"path": "/bin"}],
                "response": {"body_base64": "AP8=", "content_type": "application/octet-stream"},
            }
        ],
        response={"status": 202, "body": "queued", "delay_ms": 5},
    )
    text = r.respond(RequestView("POST", "/")).to_record()
    assert text == {
        "status": 202,
        "headers": [
            ["Content-Type", "text/plain; charset=utf-8"],
            ["Content-Security-Policy", "sandbox"],
            ["X-Content-Type-Options", "nosniff"],
        ],
        "body": "queued",
        "body_encoding": "utf-8",
        "source": "response",
        "rule": None,
        "rule_index": None,
        "handshake": None,
        "failure": None,
        "template_error": None,
        "delivery_id": None,
        "delay_ms": 5,
        "hang_up": False,
    }
    binary = r.respond(RequestView("POST", "/bin")).to_record()
    assert (binary["body"], binary["body_encoding"]) == ("AP8=", "base64")
    assert (binary["source"], binary["rule"], binary["rule_index"]) == ("rule", "binary", 0)
    assert json.loads(json.dumps([text, binary])) == [text, binary]  # storable as JSON
    assert DEFAULT.to_record()["body"] == "ok\n"


# --- CORS ------------------------------------------------------------------------------------

PREFLIGHT = RequestView(
    "OPTIONS",
    "/api",
    "",
    [
        ["Origin", "https://app.example"],
        ["Access-Control-Request-Method", "PUT"],
        ["Access-Control-Request-Headers", "content-type, x-signature"],
    ],
    b"",
)


def test_cors_is_off_by_default():
    assert DEFAULT_RESPONDER.respond(PREFLIGHT) is DEFAULT
    answer = with_settings(response={"status": 201}).respond(PREFLIGHT)
    assert not [n for n in names(answer) if n.startswith("access-control-")]


def test_with_cors_on_a_preflight_is_answered_and_marked():
    answer = with_settings(cors={"enabled": True}).respond(PREFLIGHT)
    assert (answer.status, answer.body, answer.source) == (204, b"", "preflight")
    assert header(answer, "Access-Control-Allow-Origin") == "*"
    assert header(answer, "Access-Control-Allow-Methods") == "PUT"
    assert header(answer, "Access-Control-Allow-Headers") == "content-type, x-signature"
    assert "access-control-allow-credentials" not in names(answer)
    assert SANDBOX in answer.headers
    assert answer.to_record()["source"] == "preflight"


def test_with_cors_on_every_answer_carries_the_allow_headers():
    r = with_settings(cors={"enabled": True}, response={"status": 201})
    answer = r.respond(RequestView("POST", "/", "", [["Origin", "https://app.example"]], b"{}"))
    assert answer.status == 201
    assert header(answer, "Access-Control-Allow-Origin") == "*"
    assert header(answer, "Access-Control-Expose-Headers") == "*"
    plain = with_settings(cors={"enabled": True}).respond(RequestView("GET"))
    assert (plain.body, header(plain, "Access-Control-Allow-Origin")) == (b"ok\n", "*")


def test_listed_origins_are_echoed_and_others_get_nothing():
    r = with_settings(cors={"enabled": True, "origins": ["https://app.example"]})
    allowed = r.respond(PREFLIGHT)
    assert header(allowed, "Access-Control-Allow-Origin") == "https://app.example"
    assert header(allowed, "Vary") == "Origin"
    other = RequestView(
        "OPTIONS",
        "/",
        "",
        [["Origin", "https://evil.example"], ["Access-Control-Request-Method", "PUT"]],
        b"",
    )
    refused = r.respond(other)
    assert not [n for n in names(refused) if n.startswith("access-control-")]
    assert header(refused, "Vary") == "Origin"


def test_hostile_preflight_values_are_not_echoed():
    hostile = RequestView(
        "OPTIONS",
        "/",
        "",
        [
            ["Origin", "https://app.example"],
            ["Access-Control-Request-Method", "PUT\r\nSet-Cookie: a=b"],
            ["Access-Control-Request-Headers", "x-a, <script>"],
        ],
        b"",
    )
    answer = with_settings(cors={"enabled": True}).respond(hostile)
    assert "access-control-allow-methods" not in names(answer)
    assert "access-control-allow-headers" not in names(answer)


def test_a_rule_for_options_wins_over_the_preflight_and_still_carries_cors():
    r = with_settings(
        cors={"enabled": True},
        rules=[{"name": "no", "when": [{"method": "OPTIONS"}], "response": {"status": 403}}],
    )
    answer = r.respond(PREFLIGHT)
    assert (answer.status, answer.rule) == (403, "no")
    assert header(answer, "Access-Control-Allow-Methods") == "PUT"


# --- failure rehearsal -----------------------------------------------------------------------


def test_the_first_n_requests_fail_and_the_rest_are_answered_normally():
    r = with_settings(response={"status": 200, "body": "fine", "failure": {"first": 3}})
    view = RequestView("POST", "/hook")
    choice = r.choose(view)
    assert choice.counter_key is not None
    outcomes = [r.answer(view, choice, attempt=attempt) for attempt in range(5)]
    assert [a.status for a in outcomes] == [503, 503, 503, 200, 200]
    assert outcomes[0].failure == (
        "failing on purpose: request 1 of the first 3 get 503 (this bin's response settings)"
    )
    assert outcomes[0].body == (outcomes[0].failure + "\n").encode()
    assert SANDBOX in outcomes[0].headers
    assert (outcomes[3].body, outcomes[3].failure) == (b"fine", None)


def test_first_n_counts_bin_wide_under_one_key_per_settings_version():
    settings = apply(DEFAULT_SETTINGS, {"response": {"failure": {"first": 2, "status": 500}}})
    r = Responder(settings)
    keys = {r.choose(RequestView(m, p)).counter_key for m, p in [("POST", "/a"), ("GET", "/b")]}
    assert len(keys) == 1
    assert responder_for(stored_text(settings)).choose(RequestView("GET")).counter_key in keys
    changed = Responder(apply(settings, {"response": {"failure": {"first": 3, "status": 500}}}))
    assert changed.choose(RequestView("GET")).counter_key not in keys


def test_first_n_per_delivery_id_counts_each_delivery_apart():
    r = with_settings(
        response={"failure": {"first": 2, "per_header": "X-GitHub-Delivery", "status": 502}}
    )

    def delivery(value: str | None) -> RequestView:
        headers = [] if value is None else [["x-github-delivery", value]]
        return RequestView("POST", "/", "", headers, b"{}")

    first, again, other = delivery("d-1"), delivery("d-1"), delivery("d-2")
    assert r.choose(first).counter_key == r.choose(again).counter_key
    assert r.choose(first).counter_key != r.choose(other).counter_key
    assert r.choose(delivery(None)).counter_key.endswith(":none")
    hostile = r.choose(delivery("x" * 10_000 + "\u202e")).counter_key
    assert len(hostile) < 100
    failed = r.answer(first, attempt=1)
    assert (failed.status, failed.delivery_id) == (502, "d-1")
    assert "with this X-GitHub-Delivery" in failed.failure
    answered = r.answer(first, attempt=2)
    assert (answered.status, answered.delivery_id) == (200, "d-1")
    assert answered.to_record()["delivery_id"] == "d-1"


def test_a_percentage_fails_at_random_as_a_seeded_generator_predicts():
    r = with_settings(random.Random(1234), response={"failure": {"percent": 30, "status": 500}})
    view = RequestView("POST")
    assert r.choose(view).counter_key is None
    statuses = [r.respond(view).status for _ in range(1000)]
    expected = random.Random(1234)
    assert statuses == [500 if expected.random() < 0.30 else 200 for _ in range(1000)]
    assert 200 < statuses.count(500) < 400


@pytest.mark.parametrize(("percent", "roll", "fails"), [(0, 0.0, False), (100, 0.9999, True)])
def test_a_percentage_at_the_ends_and_a_given_roll(percent, roll, fails):
    r = with_settings(response={"failure": {"percent": percent}})
    answer = r.answer(RequestView("GET"), attempt=0, roll=roll)
    assert (answer.status == 503) is fails
    r = with_settings(response={"failure": {"percent": 50}})
    assert r.answer(RequestView("GET"), roll=0.49).status == 503
    assert r.answer(RequestView("GET"), roll=0.5).status == 200


def test_a_rehearsed_timeout_holds_then_closes_without_answering():
    r = with_settings(response={"failure": {"first": 1, "timeout": True, "delay_ms": 15_000}})
    hung = r.answer(RequestView("POST"), attempt=0)
    assert (hung.hang_up, hung.delay_ms, hung.status, hung.headers, hung.body) == (
        True,
        15_000,
        0,
        (),
        b"",
    )
    record = hung.to_record()
    assert (record["status"], record["hang_up"]) == (None, True)
    assert "time out" in record["failure"]
    assert r.answer(RequestView("POST"), attempt=1).hang_up is False


def test_a_failure_in_a_rule_is_counted_per_rule():
    r = with_settings(
        rules=[
            {"when": [{"path": "/a"}], "response": {"failure": {"first": 1}}},
            {"when": [{"path": "/b"}], "response": {"failure": {"first": 1}}},
        ]
    )
    key_a = r.choose(RequestView("POST", "/a")).counter_key
    key_b = r.choose(RequestView("POST", "/b")).counter_key
    assert key_a != key_b
    assert r.answer(RequestView("POST", "/a"), attempt=0).rule_index == 0


def test_handshakes_never_fail_on_purpose():
    r = with_settings(response={"failure": {"percent": 100}})
    dropbox = RequestView("GET", "/", "challenge=abc", [], b"")
    assert r.choose(dropbox).counter_key is None
    assert r.respond(dropbox).body == b"abc"


def test_a_capture_view_reads_a_snapshot():
    class Snap:
        method, path, query_string = "POST", "/x", "a=1"
        headers = [["X-A", "1"]]
        body, content_type = b"{}", "application/json"
        received_at = datetime(2024, 1, 1, tzinfo=UTC)

    view = RequestView.of(Snap(), seq=9)
    assert (view.method, view.path, view.query(), view.header("x-a"), view.seq) == (
        "POST",
        "/x",
        [("a", "1")],
        "1",
        9,
    )
    assert view.received_at_text() == "2024-01-01T00:00:00.000000Z"
