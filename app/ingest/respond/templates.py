"""Response templates: Jinja2's immutable sandbox, cut down to expressions and ``if``.

A response body or header value that holds ``{{``, ``{%`` or ``{#`` is a template; anything else is
sent as written and costs nothing per capture. The language is Jinja's, with these limits, checked
on the syntax tree when the settings are saved so a mistake is named next to the field:

- names: ``method``, ``path``, ``query`` (``query.x``, ``query['x']``: the first value),
  ``header('X-Name')`` (any case, first value), ``json`` (the body parsed as JSON, when it is and
  is at most 1 MiB), ``jsonpath('data.object.id')``, ``seq``, ``received_at`` (ISO 8601 UTC) and
  ``uuid()`` (a fresh random UUID each call); nothing else, so ``config``, ``request``, ``self``,
  ``lipsum`` and ``cycler`` do not exist;
- no loops, assignments, macros, includes or blocks (``{% if %}`` is all), no ``*``, ``/``, ``%``,
  ``**`` or ``~``, no names starting with ``_``; a handful of filters and tests.

Without loops, macros or recursion a render does a bounded amount of work: at most
MAX_TEMPLATE_NODES nodes, each evaluated at most once. What it may produce is bounded too:
``+`` and every filter check the size of what they build, and output is counted as it streams.
Lookups never reach Python attributes (sandbox.py): ``a.b`` and ``a['b']`` read JSON
keys, list items and our own helpers only, so ``''.__class__`` is simply empty. Missing things
render empty (``ChainableUndefined``); ``finalize`` turns values into JSON-ish text, never a Python
repr. Autoescape is off: the answer is not HTML of the UI's origin; it is served under
``Content-Security-Policy: sandbox`` and ``nosniff``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.runtime import ChainableUndefined

from .limits import MAX_TEMPLATE_NODES
from .match import follow, parse_json_path
from .sandbox import ENV, FILTERS, Pairs, TemplateFailed
from .view import MISSING, RequestView

# Calls: the only callables a template can reach, and how many arguments each takes.
FUNCTIONS = {"header": 1, "jsonpath": 1, "uuid": 0}
NAMES = frozenset({"method", "path", "query", "json", "seq", "received_at", *FUNCTIONS})
_NOT_AVAILABLE = {
    nodes.For: "loops ({% for %})",
    nodes.Assign: "assignments ({% set %})",
    nodes.AssignBlock: "assignments ({% set %})",
    nodes.Macro: "macros",
    nodes.CallBlock: "macros ({% call %})",
    nodes.FilterBlock: "filter blocks",
    nodes.With: "{% with %}",
    nodes.Block: "blocks",
    nodes.Extends: "other templates",
    nodes.Include: "other templates",
    nodes.Import: "other templates",
    nodes.FromImport: "other templates",
    nodes.Mul: "*",
    nodes.Div: "/",
    nodes.FloorDiv: "//",
    nodes.Mod: "%",
    nodes.Pow: "**",
    nodes.Concat: "~ (write {{ a }}{{ b }})",
}
_ALLOWED = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Const,
    nodes.Name,
    nodes.Getattr,
    nodes.Getitem,
    nodes.Slice,
    nodes.Filter,
    nodes.Test,
    nodes.Call,
    nodes.CondExpr,
    nodes.If,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Neg,
    nodes.Pos,
    nodes.Add,
    nodes.Sub,
    nodes.Compare,
    nodes.Operand,
    nodes.List,
    nodes.Tuple,
    nodes.Dict,
    nodes.Pair,
    nodes.Keyword,
)


class TemplateInvalid(ValueError):
    """A template the settings cannot hold; the message says what and where."""


def is_template(text: str) -> bool:
    """Tell whether text is a template (holds ``{{``, ``{%`` or ``{#``)."""
    return "{{" in text or "{%" in text or "{#" in text


def _refusal(node: nodes.Node) -> str | None:
    """Say why a syntax node is not allowed in a response template, or None when it is."""
    if not isinstance(node, _ALLOWED):
        what = _NOT_AVAILABLE.get(type(node), type(node).__name__)
        return f"{what} cannot be used in a response template"
    if isinstance(node, nodes.Name) and node.name not in NAMES:
        return f"there is no {node.name!r} here; a template can use {', '.join(sorted(NAMES))}"
    if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
        return f"names starting with _ cannot be used ({node.attr!r})"
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        if isinstance(node.arg.value, str) and node.arg.value.startswith("_"):
            return f"names starting with _ cannot be used ({node.arg.value!r})"
    if isinstance(node, nodes.Filter | nodes.Test):
        known = FILTERS if isinstance(node, nodes.Filter) else ENV.tests
        if node.name not in known:
            kind = "filter" if isinstance(node, nodes.Filter) else "test"
            return f"there is no {kind} {node.name!r}; there are {', '.join(sorted(known))}"
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            return "* and ** arguments cannot be used"
    if isinstance(node, nodes.Call):
        return _call_refusal(node)
    return None


def _call_refusal(node: nodes.Call) -> str | None:
    name = node.node.name if isinstance(node.node, nodes.Name) else None
    if name not in FUNCTIONS:
        return f"only {', '.join(f'{n}()' for n in FUNCTIONS)} can be called"
    if node.kwargs or node.dyn_args is not None or node.dyn_kwargs is not None:
        return f"{name}() takes plain arguments only"
    if len(node.args) != FUNCTIONS[name]:
        return f"{name}() takes {FUNCTIONS[name]} argument(s)"
    if name == "jsonpath" and isinstance(node.args[0], nodes.Const):
        if parse_json_path(str(node.args[0].value)) is None:
            return f"{node.args[0].value!r} is not a JSON path such as data.items[0].id"
    return None


@dataclass(frozen=True)
class Template:
    """A compiled response template and the names it uses (only those are computed)."""

    source: str
    names: frozenset[str]
    compiled: jinja2.Template = field(repr=False)

    def render(self, view: RequestView, limit: int) -> str:
        """Render for one request; raise TemplateFailed past ``limit`` characters or on error."""
        context = {name: _VALUES[name](view) for name in self.names}
        pieces: list[str] = []
        size = 0
        try:
            for piece in self.compiled.generate(context):
                size += len(piece)
                if size > limit:
                    raise TemplateFailed(f"it rendered more than {limit} characters")
                pieces.append(piece)
        except TemplateFailed:
            raise
        except Exception as err:  # any error a template can raise is its author's to read
            raise TemplateFailed(_plain(err)) from None
        return "".join(pieces)


def _plain(err: Exception) -> str:
    text = str(err) or type(err).__name__
    return text if len(text) <= 300 else text[:300] + "..."


@lru_cache(maxsize=512)
def compile_template(source: str) -> Template:
    """Check and compile a template once; raise TemplateInvalid with a plain reason."""
    try:
        tree = ENV.parse(source)
    except jinja2.TemplateSyntaxError as err:
        raise TemplateInvalid(f"template syntax, line {err.lineno}: {err.message}") from None
    except RecursionError:
        raise TemplateInvalid("the template is nested too deeply") from None
    count = 0
    for node in tree.find_all(nodes.Node):
        count += 1
        if count > MAX_TEMPLATE_NODES:
            raise TemplateInvalid(f"the template is over {MAX_TEMPLATE_NODES} parts long")
        reason = _refusal(node)
        if reason is not None:
            raise TemplateInvalid(f"line {node.lineno}: {reason}")
    names = frozenset(n.name for n in tree.find_all(nodes.Name))
    try:
        compiled = ENV.from_string(tree)
    except (jinja2.TemplateError, RecursionError, SyntaxError, MemoryError) as err:
        raise TemplateInvalid(f"the template cannot be compiled: {_plain(err)}") from None
    return Template(source, names, compiled)


def _header_function(view: RequestView) -> Callable[[Any], Any]:
    def header(name: Any) -> Any:
        value = view.header(str(name))
        return ChainableUndefined(name=str(name)) if value is None else value

    return header


def _jsonpath_function(view: RequestView) -> Callable[[Any], Any]:
    def jsonpath(text: Any) -> Any:
        path = parse_json_path(str(text))
        document = view.json
        found = MISSING if path is None or document is MISSING else follow(document, path)
        return ChainableUndefined(name=str(text)) if found is MISSING else found

    return jsonpath


def _uuid() -> str:
    return str(uuid.uuid4())


_VALUES: dict[str, Callable[[RequestView], Any]] = {
    "method": lambda view: view.method,
    "path": lambda view: view.path,
    "query": lambda view: Pairs(view.query()),
    "header": _header_function,
    "json": lambda view: None if view.json is MISSING else view.json,
    "jsonpath": _jsonpath_function,
    "seq": lambda view: view.seq,
    "received_at": lambda view: view.received_at_text(),
    "uuid": lambda view: _uuid,
}
