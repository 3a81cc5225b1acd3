"""The JSON re-indenter keeps every token exactly as sent and only changes whitespace."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.browser

REINDENT = "async (text) => (await import('/static/js/jsonfmt.js')).reindent(text)"


@pytest.fixture(scope="module")
def app_page(server, browser):
    """One page on the app's origin for the module, where the static modules can be imported."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(server.url + "/")
    yield page
    context.close()


@pytest.mark.parametrize(
    "sent, pretty",
    [
        ('{"a":1}', '{\n  "a": 1\n}'),
        (
            "[12345678901234567890,1.0,-0,1E+2,1e-7,0.10]",
            "[\n  12345678901234567890,\n  1.0,\n  -0,\n  1E+2,\n  1e-7,\n  0.10\n]",
        ),
        (
            r'{"k{":"v,:[]}","q":"say \"hi\" \\","u":"\u00e9\n","end":"\\"}',
            '{\n  "k{": "v,:[]}",\n  "q": "say \\"hi\\" \\\\",\n'
            '  "u": "\\u00e9\\n",\n  "end": "\\\\"\n}',
        ),
        (
            '{"a":{},"b":[],"c":[ ],"d":{ \n }}',
            '{\n  "a": {},\n  "b": [],\n  "c": [],\n  "d": {}\n}',
        ),
        (' \r\n {\n\t"a" :  [ 1 , 2 ] } \n', '{\n  "a": [\n    1,\n    2\n  ]\n}'),
        ('{"b":1,"a":2,"b":3}', '{\n  "b": 1,\n  "a": 2,\n  "b": 3\n}'),
        (
            '[[{"x":[null,true,false]}]]',
            '[\n  [\n    {\n      "x": [\n        null,\n        true,\n        false\n'
            "      ]\n    }\n  ]\n]",
        ),
        ('"just a string"', '"just a string"'),
        ("42", "42"),
    ],
    ids=[
        "object",
        "numbers",
        "strings",
        "empty-containers",
        "whitespace",
        "key-order",
        "nesting",
        "string",
        "number",
    ],
)
def test_reindent_keeps_tokens_and_replaces_whitespace(app_page, sent, pretty):
    assert app_page.evaluate(REINDENT, sent) == pretty
    assert json.loads(pretty) == json.loads(sent)


def test_reindent_walks_a_truncated_document_as_far_as_it_goes(app_page):
    assert app_page.evaluate(REINDENT, '{"a":[1,2],"b":"unterminated') == (
        '{\n  "a": [\n    1,\n    2\n  ],\n  "b": "unterminated'
    )


def test_blocks_of_lines_render_like_one_text(app_page):
    """Splitting a long document into blocks adds no blank lines and loses no text."""
    sent = json.dumps({f"key{n}": [n, {"deep": n}] for n in range(40)})
    result = app_page.evaluate(
        """async (text) => {
            const { reindent, reindentToFragment } = await import('/static/js/jsonfmt.js');
            const heights = [];
            let texts = [];
            for (const linesPerBlock of [7, 100000]) {
                const pre = document.createElement('pre');
                pre.className = 'body-pre mono';
                pre.appendChild(reindentToFragment(text, { linesPerBlock }));
                document.body.appendChild(pre);
                // Lay out every block, on screen or not, to compare real heights.
                for (const block of pre.children) block.style.contentVisibility = 'visible';
                heights.push(pre.getBoundingClientRect().height);
                texts.push(pre.textContent);
                pre.remove();
            }
            return { heights, texts, expected: reindent(text) };
        }""",
        sent,
    )
    assert result["texts"] == [result["expected"], result["expected"]]
    assert result["heights"][0] == pytest.approx(result["heights"][1], abs=1)
