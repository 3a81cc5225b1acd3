"""A bin's response settings: what the API accepts, what it refuses and where, what it shows."""

from __future__ import annotations

import base64
import hashlib

import pytest

from app.ingest.respond import DEFAULT_SETTINGS, Invalid, apply, from_storable, stored_text
from app.ingest.respond.headers import REFUSED
from app.ingest.respond.settings import MAX_SETTINGS_BYTES


def refused(changes: dict, current=DEFAULT_SETTINGS) -> Invalid:
    with pytest.raises(Invalid) as caught:
        apply(current, changes)
    return caught.value


def response(**fields) -> dict:
    return {"response": fields}


def rule(*when, **response_fields) -> dict:
    return {"rules": [{"name": "r", "when": list(when), "response": response_fields}]}


def test_the_issue_example_is_taken_and_shown_back_as_given():
    given = {
        "status": 201,
        "headers": [["X-Hook", "ok"]],
        "body": "created",
        "content_type": "text/plain",
        "delay_ms": 0,
    }
    settings = apply(DEFAULT_SETTINGS, {"response": given})
    assert settings.response.status == 201
    assert settings.response.body == b"created"
    assert settings.to_dict()["response"] == {**given, "failure": None}


def test_null_response_goes_back_to_the_default():
    custom = apply(DEFAULT_SETTINGS, {"response": {"status": 202}})
    back = apply(custom, {"response": None})
    assert back.response is None
    assert back.is_default


def test_a_response_with_nothing_given_is_a_plain_200():
    spec = apply(DEFAULT_SETTINGS, {"response": {}}).response
    assert (spec.status, spec.body, spec.content_type, spec.headers, spec.delay_ms) == (
        200,
        b"",
        "text/plain; charset=utf-8",
        (),
        0,
    )


def test_a_binary_body_is_given_and_shown_as_base64():
    raw = bytes(range(256))
    encoded = base64.b64encode(raw).decode()
    settings = apply(DEFAULT_SETTINGS, response(body_base64=encoded))
    assert settings.response.body == raw
    shown = settings.to_dict()["response"]
    assert shown["body_base64"] == encoded
    assert "body" not in shown


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"nope": 1}, "unknown_field", "nope"),
        ({"response": "created"}, "bad_settings", "response"),
        (response(colour="red"), "unknown_field", "response"),
        (response(status=99), "bad_status", "response.status"),
        (response(status=101), "bad_status", "response.status"),
        (response(status=600), "bad_status", "response.status"),
        (response(status="201"), "bad_status", "response.status"),
        (response(status=True), "bad_status", "response.status"),
        (response(headers={"X-A": "b"}), "bad_header", "response.headers"),
        (response(headers=[["X-A", "b"]] * 51), "too_many_headers", "response.headers"),
        (response(headers=[["X-A", "b"], ["X-B"]]), "bad_header", "response.headers[1]"),
        (response(headers=[["Bad Name", "v"]]), "bad_header", "response.headers[0]"),
        (response(headers=[["", "v"]]), "bad_header", "response.headers[0]"),
        (response(headers=[["X-A", "a\r\nSet-Cookie: x=1"]]), "bad_header", "response.headers[0]"),
        (response(headers=[["X-A", "a\x00b"]]), "bad_header", "response.headers[0]"),
        (response(headers=[["X-A", 5]]), "bad_header", "response.headers[0]"),
        (response(headers=[["X-A", "{{ config }}"]]), "bad_template", "response.headers[0]"),
        (response(body="a", body_base64="YQ=="), "bad_body", "response.body"),
        (response(body=5), "bad_body", "response.body"),
        (response(body="\ud800"), "bad_body", "response.body"),
        (response(body_base64="not base64!"), "bad_body", "response.body_base64"),
        (response(body_base64="\u023a"), "bad_body", "response.body_base64"),  # not ASCII
        (response(body="x" * (64 * 1024 + 1)), "body_too_large", "response.body"),
        (response(body="é" * (32 * 1024 + 1)), "body_too_large", "response.body"),
        (
            response(body_base64=base64.b64encode(b"x" * (64 * 1024 + 1)).decode()),
            "body_too_large",
            "response.body_base64",
        ),
        (response(body="{% for x in y %}{% endfor %}"), "bad_template", "response.body"),
        (response(body="{{ unclosed"), "bad_template", "response.body"),
        (response(status=204, body="x"), "bad_body", "response.body"),
        (response(status=304, body="x"), "bad_body", "response.body"),
        (response(content_type="plain"), "bad_content_type", "response.content_type"),
        (response(content_type="text/plain\r\nX: y"), "bad_content_type", "response.content_type"),
        (response(content_type="x/" + "y" * 200), "bad_content_type", "response.content_type"),
        (response(delay_ms=-1), "bad_delay", "response.delay_ms"),
        (response(delay_ms=30_001), "bad_delay", "response.delay_ms"),
        (response(delay_ms=1.5), "bad_delay", "response.delay_ms"),
        (response(failure="often"), "bad_settings", "response.failure"),
        (response(failure={}), "bad_failure", "response.failure"),
        (response(failure={"first": 1, "percent": 5}), "bad_failure", "response.failure"),
        (response(failure={"first": 0}), "bad_failure", "response.failure.first"),
        (response(failure={"first": 1001}), "bad_failure", "response.failure.first"),
        (response(failure={"percent": 101}), "bad_failure", "response.failure.percent"),
        (response(failure={"percent": "5"}), "bad_failure", "response.failure.percent"),
        (response(failure={"percent": float("nan")}), "bad_failure", "response.failure.percent"),
        (
            response(failure={"percent": 5, "per_header": "X-Id"}),
            "bad_failure",
            "response.failure.per_header",
        ),
        (
            response(failure={"first": 2, "per_header": "X Id"}),
            "bad_failure",
            "response.failure.per_header",
        ),
        (
            response(failure={"first": 2, "timeout": True, "status": 500}),
            "bad_failure",
            "response.failure.timeout",
        ),
        (
            response(failure={"first": 2, "timeout": "yes"}),
            "bad_failure",
            "response.failure.timeout",
        ),
        (response(failure={"first": 2, "status": 700}), "bad_status", "response.failure.status"),
        (
            response(failure={"first": 2, "delay_ms": 40_000}),
            "bad_failure",
            "response.failure.delay_ms",
        ),
        (response(failure={"first": 2, "often": 1}), "unknown_field", "response.failure"),
        ({"rules": "all"}, "bad_rule", "rules"),
        ({"rules": [{"response": {}}] * 51}, "too_many_rules", "rules"),
        ({"rules": ["r"]}, "bad_settings", "rules[0]"),
        ({"rules": [{"response": {}, "colour": 1}]}, "unknown_field", "rules[0]"),
        ({"rules": [{"when": []}]}, "bad_rule", "rules[0].response"),
        ({"rules": [{"name": "n" * 101, "response": {}}]}, "bad_rule", "rules[0].name"),
        ({"rules": [{"when": {"method": "POST"}, "response": {}}]}, "bad_rule", "rules[0].when"),
        (
            {"rules": [{"when": [{"method": "GET"}] * 21, "response": {}}]},
            "bad_rule",
            "rules[0].when",
        ),
        (rule({}), "bad_condition", "rules[0].when[0]"),
        (rule({"method": "GET", "path": "/x"}), "bad_condition", "rules[0].when[0]"),
        (rule({"colour": "red"}), "bad_condition", "rules[0].when[0]"),
        (rule({"path": "/x", "value": "y"}), "unknown_field", "rules[0].when[0]"),
        (rule({"method": 5}), "bad_condition", "rules[0].when[0].method"),
        (rule({"method": []}), "bad_condition", "rules[0].when[0].method"),
        (rule({"method": "GE T"}), "bad_condition", "rules[0].when[0].method"),
        (rule({"path": "stripe/*"}), "bad_condition", "rules[0].when[0].path"),
        (rule({"path": ""}), "bad_condition", "rules[0].when[0].path"),
        (rule({"header": "X Event"}), "bad_condition", "rules[0].when[0].header"),
        (rule({"header": "X-Event", "value": 5}), "bad_condition", "rules[0].when[0].value"),
        (rule({"query": ""}), "bad_condition", "rules[0].when[0].query"),
        (rule({"json": "a..b", "equals": 1}), "bad_condition", "rules[0].when[0].json"),
        (rule({"json": "a[x]", "equals": 1}), "bad_condition", "rules[0].when[0].json"),
        (rule({"json": "a.b"}), "bad_condition", "rules[0].when[0].equals"),
        (rule({"json": "a.b", "equals": [1]}), "bad_condition", "rules[0].when[0].equals"),
        (rule({"json": "a.b", "equals": {"x": 1}}), "bad_condition", "rules[0].when[0].equals"),
        (rule(status=101), "bad_status", "rules[0].response.status"),
        (rule(headers=[["Set-Cookie", "a=b"]]), "refused_header", "rules[0].response.headers[0]"),
        ({"handshakes": "on"}, "bad_settings", "handshakes"),
        ({"handshakes": {"enabled": "yes"}}, "bad_settings", "handshakes.enabled"),
        ({"handshakes": {"zoom_secret": ""}}, "bad_handshakes", "handshakes.zoom_secret"),
        ({"handshakes": {"zoom_secret": 5}}, "bad_handshakes", "handshakes.zoom_secret"),
        (
            {"handshakes": {"meta_verify_token": "t" * 501}},
            "bad_handshakes",
            "handshakes.meta_verify_token",
        ),
        ({"handshakes": {"slack": True}}, "unknown_field", "handshakes"),
        ({"cors": True}, "bad_settings", "cors"),
        ({"cors": {"enabled": 1}}, "bad_settings", "cors.enabled"),
        ({"cors": {"origins": "*"}}, "bad_cors", "cors.origins"),
        ({"cors": {"origins": []}}, "bad_cors", "cors.origins"),
        ({"cors": {"origins": ["ftp://example.com"]}}, "bad_cors", "cors.origins[0]"),
        ({"cors": {"origins": ["*", "https://a.example/path"]}}, "bad_cors", "cors.origins[1]"),
    ],
)
def test_a_refusal_names_its_field(changes, code, field):
    error = refused(changes)
    assert (error.code, error.field) == (code, field)
    assert error.to_dict() == {"error": code, "message": str(error), "field": field}
    assert str(error)


def test_a_1xx_status_is_refused_with_the_reason():
    message = str(refused(response(status=100)))
    assert "interim" in message
    assert "200 to 599" in message


@pytest.mark.parametrize("name", sorted(REFUSED) + ["Access-Control-Allow-Origin"])
def test_every_refused_header_is_refused_in_any_case_with_the_whole_list(name):
    for spelling in (name, name.upper(), name.title()):
        error = refused(response(headers=[["X-Fine", "1"], [spelling, "x"]]))
        assert (error.code, error.field) == ("refused_header", "response.headers[1]")
        message = str(error)
        assert f"{spelling} cannot be set" in message
        for listed in ("Set-Cookie", "Strict-Transport-Security", "Transfer-Encoding"):
            assert listed in message
        assert "Access-Control-*" in message


def test_ordinary_headers_are_kept_in_order_with_duplicates():
    headers = [["Location", "/next"], ["X-Dup", "1"], ["X-Dup", "2"], ["WWW-Authenticate", "Basic"]]
    spec = apply(DEFAULT_SETTINGS, response(headers=headers)).response
    assert [list(pair) for pair in spec.headers] == headers


def test_secrets_are_write_only_and_kept_when_left_out():
    settings = apply(
        DEFAULT_SETTINGS,
        {"handshakes": {"meta_verify_token": "meatyhamhock", "zoom_secret": "zoom-secret"}},
    )
    shown = settings.to_dict()["handshakes"]
    assert shown == {"enabled": True, "meta_verify_token_set": True, "zoom_secret_set": True}
    assert "meatyhamhock" not in repr(settings) and "zoom-secret" not in repr(settings)
    assert "meatyhamhock" not in str(settings.to_storable())

    turned_off = apply(settings, {"handshakes": {"enabled": False}})
    assert turned_off.zoom_secret == "zoom-secret"
    assert turned_off.meta_verify_token_sha256 == settings.meta_verify_token_sha256

    cleared = apply(turned_off, {"handshakes": {"zoom_secret": None}})
    assert cleared.zoom_secret is None
    assert cleared.meta_verify_token_sha256 is not None
    assert cleared.handshakes is False

    reset = apply(cleared, {"handshakes": None})
    assert (reset.handshakes, reset.meta_verify_token_sha256, reset.zoom_secret) == (
        True,
        None,
        None,
    )


def test_the_meta_verify_token_is_kept_only_as_its_digest():
    settings = apply(DEFAULT_SETTINGS, {"handshakes": {"meta_verify_token": "meatyhamhock"}})
    assert settings.meta_verify_token_sha256 == hashlib.sha256(b"meatyhamhock").hexdigest()


def test_cors_is_off_by_default_and_origins_are_normalised():
    assert DEFAULT_SETTINGS.to_dict()["cors"] == {"enabled": False, "origins": ["*"]}
    settings = apply(
        DEFAULT_SETTINGS,
        {"cors": {"enabled": True, "origins": ["https://App.Example.com", "http://[::1]:8000"]}},
    )
    assert settings.to_dict()["cors"] == {
        "enabled": True,
        "origins": ["https://app.example.com", "http://[::1]:8000"],
    }


def test_changes_leave_the_other_settings_alone():
    first = apply(DEFAULT_SETTINGS, {"response": {"status": 202}, "cors": {"enabled": True}})
    second = apply(first, {"rules": [{"response": {"status": 418}}]})
    assert second.response.status == 202
    assert second.cors is True
    assert second.rules[0].response.status == 418


def test_rules_show_back_as_given():
    rules = [
        {
            "name": "failed payments",
            "when": [
                {"method": "POST"},
                {"method": ["PUT", "PATCH"]},
                {"path": "/stripe/*"},
                {"header": "Stripe-Signature"},
                {"header": "X-Event", "value": "invoice.*"},
                {"query": "mode", "value": "test"},
                {"json": "data.object.status", "equals": "failed"},
                {"json": "data.object.amount", "equals": 0},
                {"json": "livemode", "equals": False},
                {"json": "data.previous", "equals": None},
            ],
            "response": {"status": 500, "body": "no"},
        }
    ]
    settings = apply(DEFAULT_SETTINGS, {"rules": rules})
    shown = settings.to_dict()["rules"]
    assert shown[0]["when"] == rules[0]["when"]
    assert shown[0]["name"] == "failed payments"


def test_methods_are_upper_cased():
    settings = apply(DEFAULT_SETTINGS, rule({"method": ["post", "Get"]}))
    assert settings.to_dict()["rules"][0]["when"][0] == {"method": ["POST", "GET"]}


def test_a_timeout_failure_holds_for_thirty_seconds_unless_told():
    spec = apply(DEFAULT_SETTINGS, response(failure={"first": 2, "timeout": True})).response
    assert (spec.failure.timeout, spec.failure.delay_ms) == (True, 30_000)
    shown = apply(DEFAULT_SETTINGS, response(failure={"percent": 12.5})).to_dict()
    assert shown["response"]["failure"] == {"percent": 12.5, "status": 503, "delay_ms": 0}


def test_settings_that_would_store_over_the_limit_are_refused():
    big = {"body": "x" * 60_000}
    assert apply(DEFAULT_SETTINGS, {"rules": [{"response": big}] * 4})
    error = refused({"rules": [{"response": big}] * 5})
    assert error.code == "settings_too_large"
    assert str(MAX_SETTINGS_BYTES) in str(error)


def test_the_stored_form_reads_back_to_the_same_settings_secrets_included():
    settings = apply(
        DEFAULT_SETTINGS,
        {
            "response": {"status": 201, "body": "{{ method }}", "failure": {"percent": 10}},
            "rules": [{"when": [{"path": "/a"}], "response": {"body_base64": "AAE="}}],
            "handshakes": {"enabled": False, "meta_verify_token": "t", "zoom_secret": "z"},
            "cors": {"enabled": True, "origins": ["https://a.example"]},
        },
    )
    stored = settings.to_storable()
    assert stored["handshakes"]["zoom_secret"] == "z"
    assert from_storable(stored) == settings
    assert stored_text(from_storable(stored)) == stored_text(settings)


def test_nothing_stored_reads_as_the_defaults():
    assert from_storable(None) == DEFAULT_SETTINGS
    assert from_storable({}) == DEFAULT_SETTINGS


def test_a_stored_form_from_an_unknown_version_is_refused():
    stored = DEFAULT_SETTINGS.to_storable() | {"version": 99}
    with pytest.raises(Invalid):
        from_storable(stored)


def test_a_stored_setting_refused_since_is_not_served():
    stored = DEFAULT_SETTINGS.to_storable()
    stored["response"] = {"status": 200, "headers": [["Set-Cookie", "a=b"]]}
    with pytest.raises(Invalid) as caught:
        from_storable(stored)
    assert caught.value.code == "refused_header"
