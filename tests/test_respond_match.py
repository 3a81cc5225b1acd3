"""Rules: which one answers a request. Each condition kind, AND, first match wins, globs."""

from __future__ import annotations

import pytest

from app.ingest.respond import DEFAULT_SETTINGS, RequestView, Responder, apply
from app.ingest.respond.match import follow, glob_regex, json_equal, parse_json_path
from app.ingest.respond.view import MISSING


def responder(*rules: dict) -> Responder:
    return Responder(apply(DEFAULT_SETTINGS, {"rules": list(rules)}))


def named(name: str, *when: dict) -> dict:
    return {"name": name, "when": list(when), "response": {"status": 200, "body": name}}


def chosen(r: Responder, view: RequestView) -> str | None:
    return r.choose(view).rule


def post(path: str = "/", body: bytes = b"", query: str = "", headers=()) -> RequestView:
    return RequestView("POST", path, query, [list(h) for h in headers], body)


@pytest.mark.parametrize(
    ("glob", "text", "matches"),
    [
        ("/stripe/*", "/stripe/events", True),
        ("/stripe/*", "/stripe/events/deep", True),  # * crosses "/"
        ("/stripe/*", "/stripe", False),
        ("/stripe/*", "/github/events", False),
        ("*", "", True),
        ("/a?c", "/abc", True),
        ("/a?c", "/ac", False),
        ("/items[0]", "/items[0]", True),  # brackets are themselves, unlike fnmatch
        ("/items[0]", "/items0", False),
        ("a.b", "axb", False),  # regex characters are themselves
        ("*.created", "invoice.created", True),
        ("*.created", "invoice.updated", False),
        ("in*ce.*ed", "invoice.created", True),
        ("*a*b*", "xxaxxbxx", True),
        ("*a*b*", "xxbxxaxx", False),
        ("ab*ab", "ab", False),
        ("ab*ab", "abab", True),
        ("multi\nline*", "multi\nline\nmore", True),
        ("Push", "push", False),  # values match case-sensitively
    ],
)
def test_globs(glob, text, matches):
    assert (glob_regex(glob).match(text) is not None) is matches


def test_a_pathological_glob_on_a_long_value_still_answers():
    # With plain backtracking, "*a*a*...*b" against "aaaa..." takes time exponential in the stars;
    # the translation's atomic groups make it linear, so this returns instead of hanging.
    glob = "*a" * 30 + "*b"
    assert glob_regex(glob).match("a" * 50_000) is None
    assert glob_regex(glob).match("a" * 50_000 + "b") is not None


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("status", ("status",)),
        ("data.object.status", ("data", "object", "status")),
        ("items[0].id", ("items", 0, "id")),
        ("items[0][1]", ("items", 0, 1)),
        ("a-b.c_d", ("a-b", "c_d")),
        ("", None),
        (".a", None),
        ("a.", None),
        ("a..b", None),
        ("a[x]", None),
        ("a[0]b", None),
        ("a.[0]", None),
    ],
)
def test_json_paths(text, parts):
    assert parse_json_path(text) == parts


def test_following_a_json_path():
    document = {"data": {"items": [{"id": "a"}, {"id": "b"}], "0": "zero"}}
    assert follow(document, ("data", "items", 1, "id")) == "b"
    assert follow(document, ("data", "items", "1", "id")) == "b"  # items.1.id
    assert follow(document, ("data", 0)) == "zero"  # a key named "0"
    assert follow(document, ("data", "items", 5)) is MISSING
    assert follow(document, ("data", "nope", "deeper")) is MISSING
    assert follow("text", ("a",)) is MISSING


@pytest.mark.parametrize(
    ("found", "wanted", "equal"),
    [
        ("failed", "failed", True),
        (1, 1.0, True),
        (True, 1, False),
        (1, True, False),
        (False, False, True),
        (None, None, True),
        (0, None, False),
        ("1", 1, False),
        ({"a": 1}, "x", False),
    ],
)
def test_json_equality_is_json_not_python(found, wanted, equal):
    assert json_equal(found, wanted) is equal


def test_method_condition():
    r = responder(named("writes", {"method": ["POST", "PUT"]}))
    assert chosen(r, post()) == "writes"
    assert chosen(r, RequestView("PUT")) == "writes"
    assert chosen(r, RequestView("put")) == "writes"
    assert chosen(r, RequestView("GET")) is None


def test_path_condition_is_below_the_bin_and_the_bins_own_url_is_slash():
    r = responder(named("stripe", {"path": "/stripe/*"}), named("root", {"path": "/"}))
    assert chosen(r, post("/stripe/events")) == "stripe"
    assert chosen(r, post("")) == "root"
    assert chosen(r, post("/")) == "root"
    assert chosen(r, post("/github")) is None


def test_header_condition_any_case_any_of_its_values():
    r = responder(named("push", {"header": "x-github-event", "value": "pu*"}))
    assert chosen(r, post(headers=[("X-GitHub-Event", "push")])) == "push"
    assert chosen(r, post(headers=[("X-Other", "a"), ("X-GITHUB-EVENT", "ping")])) is None
    assert chosen(r, post(headers=[("X-GitHub-Event", "ping"), ("X-GitHub-Event", "push")])) == (
        "push"
    )
    assert chosen(r, post()) is None


def test_header_condition_without_a_value_asks_for_presence():
    r = responder(named("signed", {"header": "Stripe-Signature"}))
    assert chosen(r, post(headers=[("stripe-signature", "")])) == "signed"
    assert chosen(r, post()) is None


def test_query_condition_decoded_and_by_presence():
    r = responder(
        named("search", {"query": "q", "value": "hello world*"}),
        named("debug", {"query": "debug"}),
    )
    assert chosen(r, post(query="q=hello+world%21")) == "search"
    assert chosen(r, post(query="x=1&debug")) == "debug"
    assert chosen(r, post(query="Q=hello+world")) is None


def test_json_condition_on_the_body():
    r = responder(named("failed", {"json": "data.object.status", "equals": "failed"}))
    assert chosen(r, post(body=b'{"data": {"object": {"status": "failed"}}}')) == "failed"
    assert chosen(r, post(body=b'{"data": {"object": {"status": "paid"}}}')) is None
    assert chosen(r, post(body=b'{"data": []}')) is None
    assert chosen(r, post(body=b"status=failed")) is None
    assert chosen(r, post(body=b"\xff\xfe{")) is None


def test_json_condition_on_numbers_booleans_null_and_list_items():
    r = responder(
        named("zero", {"json": "amount", "equals": 0}),
        named("live", {"json": "livemode", "equals": True}),
        named("none", {"json": "previous", "equals": None}),
        named("first", {"json": "items[0].id", "equals": "a"}),
    )
    assert chosen(r, post(body=b'{"amount": 0.0}')) == "zero"
    assert chosen(r, post(body=b'{"amount": false, "livemode": true}')) == "live"
    assert chosen(r, post(body=b'{"previous": null}')) == "none"
    assert chosen(r, post(body=b'{"other": 1}')) is None  # missing is not null
    assert chosen(r, post(body=b'{"items": [{"id": "a"}]}')) == "first"


def test_a_string_spelled_with_escapes_or_in_utf16_still_matches_without_the_plain_spelling():
    """A string condition first looks for the value's plain spelling in the body (no parse when
    it is absent); a body that could spell it another way is parsed all the same."""
    r = responder(named("failed", {"json": "status", "equals": "failed"}))
    assert chosen(r, post(body=b'{"status": "fail\\u0065d"}')) == "failed"
    assert chosen(r, post(body='{"status": "failed"}'.encode("utf-16"))) == "failed"
    assert chosen(r, post(body='{"status": "failed"}'.encode("utf-16-le"))) == "failed"
    assert chosen(r, post(body='{"status": "failed"}'.encode("utf-32"))) == "failed"
    assert chosen(r, post(body=b'\xef\xbb\xbf{"status": "failed"}')) == "failed"
    assert chosen(r, post(body=b'{"status": "failed", "status": "paid"}')) is None  # last wins
    assert chosen(r, post(body=b'{"failed": "status"}')) is None
    quoted = responder(named("q", {"json": "a", "equals": 'say "hi"\n'}))
    assert chosen(quoted, post(body=b'{"a": "say \\"hi\\"\\n"}')) == "q"
    assert chosen(quoted, post(body=b'{"a": "say hi"}')) is None
    accents = responder(named("e", {"json": "a", "equals": "caf\u00e9 \u2028"}))
    assert chosen(accents, post(body='{"a": "caf\u00e9 \u2028"}'.encode())) == "e"
    assert chosen(accents, post(body=b'{"a": "caf\\u00e9 \\u2028"}')) == "e"


def test_a_body_over_a_mebibyte_is_not_parsed_so_json_conditions_do_not_match():
    r = responder(named("failed", {"json": "status", "equals": "failed"}))
    padding = b" " * (1024 * 1024)
    assert chosen(r, post(body=b'{"status": "failed"}')) == "failed"
    assert chosen(r, post(body=b'{"status": "failed"}' + padding)) is None


def test_a_hostile_json_body_does_not_break_matching():
    r = responder(named("x", {"json": "a", "equals": 1}))
    assert chosen(r, post(body=b"[" * 100_000)) is None  # nested past the recursion limit
    assert chosen(r, post(body=b'{"a": ' + b"9" * 5000 + b"}")) is None  # past int's digit limit


def test_conditions_combine_with_and():
    r = responder(
        named(
            "stripe failed",
            {"method": "POST"},
            {"path": "/stripe/*"},
            {"header": "Stripe-Signature"},
            {"json": "type", "equals": "invoice.payment_failed"},
        )
    )
    body = b'{"type": "invoice.payment_failed"}'
    signed = [("Stripe-Signature", "t=1,v1=x")]
    assert chosen(r, post("/stripe/hook", body, headers=signed)) == "stripe failed"
    assert chosen(r, post("/stripe/hook", body)) is None
    assert chosen(r, post("/github/hook", body, headers=signed)) is None
    assert chosen(r, RequestView("PUT", "/stripe/hook", "", [list(signed[0])], body)) is None


def test_the_first_matching_rule_wins_and_an_empty_when_matches_everything():
    r = responder(
        named("specific", {"path": "/a"}),
        named("broad", {"path": "/*"}),
        named("everything"),
    )
    assert chosen(r, post("/a")) == "specific"
    assert chosen(r, post("/b")) == "broad"
    assert chosen(r, RequestView("GET", "")) == "broad"
    choice = r.choose(RequestView("DELETE", "nothing-like-a-path"))
    assert (choice.source, choice.rule, choice.rule_index) == ("rule", "everything", 2)


def test_no_rule_matching_falls_through_to_the_default():
    r = responder(named("a", {"path": "/a"}))
    choice = r.choose(post("/b"))
    assert choice.source == "default"
    assert r.answer(post("/b"), choice).body == b"ok\n"


def test_a_rule_answers_its_own_response():
    r = responder(named("a", {"path": "/a"}))
    answer = r.respond(post("/a"))
    assert (answer.status, answer.body, answer.source, answer.rule, answer.rule_index) == (
        200,
        b"a",
        "rule",
        "a",
        0,
    )
