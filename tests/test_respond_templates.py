"""Templates: every variable, hostile templates get nothing, failures answer 500 plainly."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest

from app.ingest.respond import DEFAULT_SETTINGS, Invalid, RequestView, Responder, apply
from app.ingest.respond.limits import MAX_RENDERED_BODY, MAX_TEMPLATE_NODES
from app.ingest.respond.sandbox import ENV, Pairs
from app.ingest.respond.templates import (
    TemplateFailed,
    TemplateInvalid,
    compile_template,
    is_template,
)

RECEIVED = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
STRIPE = (
    b'{"id": "evt_1", "type": "invoice.payment_failed", "livemode": false, "amount": 1250,'
    b' "data": {"object": {"status": "failed", "lines": [{"id": "il_1"}, {"id": "il_2"}]}},'
    b' "items": ["first item"], "keys": "k"}'
)


def view(body: bytes = STRIPE, **fields) -> RequestView:
    values = {
        "method": "POST",
        "path": "/stripe/events",
        "query_string": "mode=test&mode=live&q=a+b%26c",
        "headers": [["Content-Type", "application/json"], ["X-Request-Id", "req-42"]],
        "body": body,
        "seq": 17,
        "received_at": RECEIVED,
    }
    values.update(fields)
    return RequestView(**values)


def render(source: str, request: RequestView | None = None) -> str:
    return compile_template(source).render(request or view(), MAX_RENDERED_BODY)


def answered(body: str, request: RequestView | None = None, **response):
    settings = apply(DEFAULT_SETTINGS, {"response": {"body": body, **response}})
    return Responder(settings).respond(request or view())


@pytest.mark.parametrize(
    ("source", "output"),
    [
        ("{{ method }}", "POST"),
        ("{{ path }}", "/stripe/events"),
        ("{{ query.mode }}", "test"),  # the first value
        ("{{ query['q'] }}", "a b&c"),  # decoded
        ("[{{ query.missing }}]", "[]"),
        ("{{ header('x-request-id') }}", "req-42"),  # any case
        ("[{{ header('X-Missing') }}]", "[]"),
        ("{{ header('X-Missing') | default('none') }}", "none"),
        ("{{ json.type }}", "invoice.payment_failed"),
        ("{{ json.data.object.lines[1].id }}", "il_2"),
        ("{{ json.data.object.lines.0.id }}", "il_1"),
        # JSON keys named like dict methods are the keys, not Python's methods
        ("{{ json.items[0] }} {{ json.keys }}", "first item k"),
        ("{{ json['data']['object']['status'] }}", "failed"),
        ("{{ jsonpath('data.object.status') }}", "failed"),
        ("{{ jsonpath('data.object.lines[0].id') }}", "il_1"),
        ("[{{ jsonpath('data.nothing.here') }}]", "[]"),
        ("[{{ json.nothing.here.at.all }}]", "[]"),
        ("{{ json.livemode }} {{ json.amount }} {{ json.amount + 1 }}", "false 1250 1251"),
        ("{{ json.data.object.lines }}", '[{"id":"il_1"},{"id":"il_2"}]'),
        ("{{ json.type | tojson }}", '"invoice.payment_failed"'),
        ("{{ seq }}", "17"),
        ("{{ received_at }}", "2024-05-06T07:08:09.123456Z"),
        ("{% if json.livemode %}live{% else %}test{% endif %}", "test"),
        ("{{ 'yes' if method == 'POST' else 'no' }}", "yes"),
        ("{{ json.type | upper }}", "INVOICE.PAYMENT_FAILED"),
        ("{{ query.q | urlencode }}", "a%20b%26c"),
        ("{{ json.data.object.lines | length }}", "2"),
        ("{{ (json.data.object.lines | first).id }}", "il_1"),
        ("{{ json.type is defined }} {{ json.nope is defined }}", "true false"),
        ("{# a comment #}kept", "kept"),
        ("line\n", "line\n"),  # the last newline is kept
        ("{% raw %}{{ literal }}{% endraw %}", "{{ literal }}"),
    ],
)
def test_each_variable_renders(source, output):
    assert render(source) == output


def test_uuid_is_fresh_each_call():
    first, second = render("{{ uuid() }} {{ uuid() }}").split()
    assert uuid.UUID(first).version == 4
    assert first != second
    assert render("{{ uuid() }}") != render("{{ uuid() }}")


def test_seq_is_empty_before_the_capture_is_stored():
    assert render("[{{ seq }}]", view(seq=None)) == "[]"


def test_json_is_empty_when_the_body_is_not_json_or_too_big():
    assert render("[{{ json }}][{{ jsonpath('a') }}]", view(b"a=1")) == "[][]"
    big = b'{"a": "x"}' + b" " * (1024 * 1024)
    assert render("[{{ json.a }}]", view(big)) == "[]"


def test_only_the_names_a_template_uses_are_computed(monkeypatch):
    monkeypatch.setattr(
        "app.ingest.respond.view.parse_json", lambda body: pytest.fail("json was parsed")
    )
    assert render("{{ method }} {{ header('x-request-id') }}") == "POST req-42"


def test_text_without_template_marks_is_sent_as_written():
    assert not is_template("plain {json} $x %s")
    answer = answered("{not: a template}")
    assert answer.body == b"{not: a template}"


def test_a_templated_answer_as_a_provider_would_see_it():
    answer = answered(
        '{"received": "{{ json.id }}", "seq": {{ seq }}, "echo": {{ json.type | tojson }}}',
        content_type="application/json",
        headers=[["X-Request", "{{ header('X-Request-Id') }}-{{ method }}"]],
        status=202,
    )
    assert answer.status == 202
    assert answer.body == b'{"received": "evt_1", "seq": 17, "echo": "invoice.payment_failed"}'
    assert ("X-Request", "req-42-POST") in answer.headers
    assert ("Content-Type", "application/json") in answer.headers


HOSTILE = [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__.os }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ self }}",
    "{{ self.__init__.__globals__ }}",
    "{{ config }}",
    "{{ config.items() }}",
    "{{ request }}",
    "{{ request.environ }}",
    "{{ range(10) }}",
    "{{ '{0.__class__}'.format(method) }}",
    "{{ '{0.__class__.__mro__}'.format(json) }}",
    "{{ method.format_map({}) }}",
    "{{ '%s' % method }}",
    "{{ method | attr('__class__') }}",
    "{{ method | format('%s') }}",
    "{{ json['__class__'] }}",
    "{{ header.__globals__ }}",
    "{{ uuid.__globals__ }}",
    "{{ method.upper() }}",
    "{{ header('x').__class__ }}",
    "{% for c in ''.__class__.__mro__ %}{{ c }}{% endfor %}",
    "{% set x = 1 %}{{ x }}",
    "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    "{% include 'other' %}",
    "{% extends 'base' %}",
    "{% import 'x' as y %}",
    "{% with a = 1 %}{{ a }}{% endwith %}",
    "{% filter upper %}x{% endfilter %}",
    "{{ 'a' * 10000000 }}",
    "{{ 9 ** 9 ** 9 }}",
    "{{ method ~ method }}",
    "{{ loop }}",
    "{{ caller() }}",
    "{{ varargs }}",
    "{{ header(*['x']) }}",
    "{{ header(name='x') }}",
    "{{ uuid(1) }}",
    "{{ jsonpath('a..b') }}",
    "{{ method | center(1000000000) }}",
    "{{ method | safe }}",
    "{{ method is callable }}",
]
PYTHON_INTERNALS = re.compile(r"<class|<function|<built-in|<module|__|object at 0x|mappingproxy")


@pytest.mark.parametrize("source", HOSTILE)
def test_a_hostile_template_is_refused_when_saved_with_a_reason(source):
    with pytest.raises(Invalid) as caught:
        apply(DEFAULT_SETTINGS, {"response": {"body": source}})
    assert (caught.value.code, caught.value.field) == ("bad_template", "response.body")
    assert str(caught.value).startswith("response.body: line 1: ")


@pytest.mark.parametrize(
    "source",
    [
        "{{ json.__class__ }}",
        "{{ json.keys }}",
        "{{ json.items }}{{ json.values }}{{ json.get }}",
        "{{ method.__class__ }}",
        "{{ method.format }}",
        "{{ query.__init__ }}",
        "{{ query._first }}",
        "{{ json.data.__dict__ }}",
        "{{ json['__class__'] }}",
        "{{ (json|first).__class__ }}",
        "{{ header }}{{ uuid }}{{ jsonpath }}{{ query }}",
    ],
)
def test_the_sandbox_itself_gives_nothing_even_past_the_save_checks(source):
    # Compiled straight on the environment, skipping the syntax-tree checks: lookups still reach
    # only JSON keys, list items and our helpers, and output is never a Python repr.
    request = view(b'{"data": {"x": 1}, "a": [1]}')
    context = {
        "method": "POST",
        "json": {"data": {"x": 1}, "a": [1]},
        "query": Pairs([("a", "1")]),
        "header": lambda name: request.header(name),
        "uuid": lambda: "u",
        "jsonpath": lambda path: None,
    }
    output = ENV.from_string(source).render(context)
    assert not PYTHON_INTERNALS.search(output), output
    assert output == ""


def test_a_template_over_the_node_limit_is_refused():
    source = "{{ method }}" * MAX_TEMPLATE_NODES  # one Output node and its names
    with pytest.raises(TemplateInvalid) as caught:
        compile_template(source)
    assert str(MAX_TEMPLATE_NODES) in str(caught.value)


def test_output_past_the_cap_fails_as_it_streams():
    source = "{{ json.s }}" * 40
    request = view(b'{"s": "' + b"x" * 30_000 + b'"}')
    with pytest.raises(TemplateFailed) as caught:
        compile_template(source).render(request, 1_000_000)
    assert "more than 1000000 characters" in str(caught.value)


def test_sums_and_filters_refuse_results_past_the_cap_before_building_them():
    text = view(b'{"s": "' + b"/" * 600_000 + b'"}')  # "/" urlencodes to 3 characters
    items = view(b'{"l": [' + b"1," * 300_000 + b"1]}")
    for source, request in (
        ("{{ json.s + json.s }}", text),
        ("{{ json.s | urlencode | urlencode }}", text),
        ("{{ [json.l, json.l] | tojson }}", items),
        ("{{ [json.l, json.l] }}", items),
        ("{{ [json.l, json.l] | length }}", items),
    ):
        template = compile_template(source)
        if source.endswith("length }}"):
            assert template.render(request, 10 * MAX_RENDERED_BODY) == "2"  # counting is fine
            continue
        with pytest.raises(TemplateFailed) as caught:
            template.render(request, 10 * MAX_RENDERED_BODY)
        assert f"over {MAX_RENDERED_BODY} characters" in str(caught.value)


def test_a_failing_template_answers_500_with_a_plain_reason():
    answer = answered("{{ json.amount - 'x' }}")
    assert answer.status == 500
    assert answer.body.startswith(b"the response template failed: ")
    assert answer.body.endswith(b"\n")
    assert answer.template_error
    assert ("Content-Security-Policy", "sandbox") in answer.headers
    record = answer.to_record()
    assert record["status"] == 500 and record["template_error"] == answer.template_error


def test_a_body_rendering_past_a_mebibyte_answers_500():
    big = b'{"s": "' + b"x" * 600_000 + b'"}'
    answer = answered("{{ json.s }}{{ json.s }}", view(big))
    assert answer.status == 500
    assert b"more than" in answer.body


def test_a_header_template_that_renders_a_line_break_answers_500():
    request = view(b'{"v": "a\\r\\nSet-Cookie: session=stolen"}')
    settings = apply(DEFAULT_SETTINGS, {"response": {"headers": [["X-Echo", "{{ json.v }}"]]}})
    answer = Responder(settings).respond(request)
    assert answer.status == 500
    assert b"header X-Echo rendered a line break" in answer.body
    assert all(name != "Set-Cookie" for name, _ in answer.headers)


def test_a_header_template_past_its_cap_answers_500():
    request = view(b'{"v": "' + b"x" * 9000 + b'"}')
    settings = apply(DEFAULT_SETTINGS, {"response": {"headers": [["X-Echo", "{{ json.v }}"]]}})
    answer = Responder(settings).respond(request)
    assert answer.status == 500
    assert b"header X-Echo" in answer.body


def test_an_undefined_value_in_arithmetic_fails_plainly():
    answer = answered("{{ header('X-Missing') + 1 }}")
    assert answer.status == 500
    assert b"undefined" in answer.body


def test_templated_headers_sent_with_non_latin_text_go_out_as_utf8_bytes():
    request = view(b'{"who": "J\\u00fcrgen \\u65e5\\u672c"}')
    settings = apply(DEFAULT_SETTINGS, {"response": {"headers": [["X-Who", "{{ json.who }}"]]}})
    answer = Responder(settings).respond(request)
    assert ("X-Who", "Jürgen 日本") in answer.headers
    sent = dict(answer.wsgi_headers())["X-Who"]
    assert sent.encode("latin-1") == "Jürgen 日本".encode()
