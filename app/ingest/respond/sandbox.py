"""The Jinja2 sandbox that response templates run in: lookups that reach data only, and
filters and operators that check the size of what they build.

``a.b`` and ``a['b']`` read JSON keys, list items and our own helpers, never a Python attribute,
so ``''.__class__`` is simply empty. ``+`` (the only operator that can grow text besides the
output itself) and every filter refuse results over MAX_RENDERED_BODY characters before building
them where they can; ``finalize`` turns values into JSON-ish text, never a Python repr.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from jinja2.runtime import ChainableUndefined, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .limits import MAX_RENDERED_BODY
from .match import follow
from .view import MISSING

TESTS = (
    "defined undefined none boolean true false integer float number string mapping sequence"
    " in eq ne lt le gt ge equalto greaterthan lessthan"
).split()


class TemplateFailed(Exception):
    """A template failed while answering a capture; the message is the plain reason."""


def _too_big(what: str) -> TemplateFailed:
    return TemplateFailed(f"{what} would be over {MAX_RENDERED_BODY} characters")


def _dump(value: Any) -> str:
    """JSON text of a value, refusing before the work when it cannot fit in the output."""
    if _json_size_at_least(value) > MAX_RENDERED_BODY:
        raise _too_big("the JSON text")
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_no_json)
    if len(text) > MAX_RENDERED_BODY:
        raise _too_big("the JSON text")
    return text


def _no_json(value: Any) -> Any:
    return None  # undefined values and helpers are null in JSON, never a Python repr


def _json_size_at_least(value: Any) -> int:
    """A lower bound of the JSON text's length, giving up as soon as it passes the limit."""
    size, stack = 0, [value]
    while stack and size <= MAX_RENDERED_BODY:
        item = stack.pop()
        if isinstance(item, str):
            size += len(item) + 2
        elif isinstance(item, dict):
            size += 2 + 2 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            size += 2 + len(item)
            stack.extend(item)
        else:
            size += 1
    return size


def _finalize(value: Any) -> Any:
    """Turn a value into output text: JSON-ish, empty for missing, never a Python repr."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, Undefined):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, dict | list | tuple):
        return _dump(value)
    return ""


def _scalar_text(value: Any) -> str:
    if isinstance(value, Undefined) or value is None:
        return ""
    if isinstance(value, str | bool | int | float):
        return _finalize(value)
    raise TemplateFailed("this filter takes text or a number, not a list or an object")


def _checked(text: str) -> str:
    if len(text) > MAX_RENDERED_BODY:
        raise _too_big("a filter's result")
    return text


def _default(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    if isinstance(value, Undefined) or (boolean and not value):
        return default_value
    return value


def _number(kind: Callable[[Any], Any]) -> Callable[..., Any]:
    def convert(value: Any, default: Any = 0) -> Any:
        try:
            return kind(value)
        except (TypeError, ValueError, OverflowError):
            return default

    return convert


def _pick(index: int) -> Callable[[Any], Any]:
    def pick(value: Any) -> Any:
        if isinstance(value, list | str) and value:
            return value[index]
        return ChainableUndefined()

    return pick


FILTERS: dict[str, Callable[..., Any]] = {
    "default": _default,
    "d": _default,
    "lower": lambda v: _scalar_text(v).lower(),
    "upper": lambda v: _scalar_text(v).upper(),
    "trim": lambda v: _scalar_text(v).strip(),
    "tojson": lambda v: _dump(None if isinstance(v, Undefined) else v),
    "urlencode": lambda v: _checked(quote(_scalar_text(v), safe="")),
    "length": lambda v: len(v) if isinstance(v, str | list | dict) else 0,
    "count": lambda v: len(v) if isinstance(v, str | list | dict) else 0,
    "int": _number(int),
    "float": _number(float),
    "first": _pick(0),
    "last": _pick(-1),
}


class Pairs:
    """``query``: ``query.name`` and ``query['name']`` give a parameter's first value."""

    __slots__ = ("_first",)

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._first: dict[str, str] = {}
        for key, value in pairs:
            self._first.setdefault(key, value)

    def lookup(self, key: Any) -> Any:
        return self._first.get(key, MISSING) if isinstance(key, str) else MISSING


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox, with lookups that reach data only and size-checked ``+`` and ``-``."""

    intercepted_binops = frozenset({"+", "-"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        return self._lookup(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        return self._lookup(obj, argument)

    def _lookup(self, obj: Any, key: Any) -> Any:
        found = MISSING
        if isinstance(obj, dict):
            if isinstance(key, str | int) and not isinstance(key, bool):
                found = obj.get(str(key), MISSING)
        elif isinstance(obj, list | str):
            if isinstance(key, slice):
                found = obj[key]
            elif isinstance(key, str) and key.isdigit():
                found = follow(obj, (int(key),)) if isinstance(obj, list) else MISSING
            elif isinstance(key, int) and not isinstance(key, bool) and -len(obj) <= key < len(obj):
                found = obj[key]
        elif isinstance(obj, Pairs):
            found = obj.lookup(key)
        if found is MISSING:
            return self.undefined(name=key if isinstance(key, str) else None)
        return found

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        sized = (str, list, tuple)
        if isinstance(left, sized) and isinstance(right, sized):
            if len(left) + len(right) > MAX_RENDERED_BODY:
                raise _too_big("the sum")
        return super().call_binop(context, operator, left, right)


ENV = _Sandbox(
    autoescape=False,
    undefined=ChainableUndefined,
    finalize=_finalize,
    keep_trailing_newline=True,  # a body is sent byte for byte, its last newline included
    cache_size=0,
    auto_reload=False,
)
ENV.globals.clear()  # no range, lipsum, cycler, joiner, namespace, dict
ENV.filters = dict(FILTERS)
ENV.tests = {name: ENV.tests[name] for name in TESTS}
