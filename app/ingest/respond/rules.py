"""Check a bin's rules: an ordered list, first match wins, each condition one kind.

A rule is ``{"name": "failed payments", "when": [...], "response": {...}}``; its conditions hold
together (AND), and an empty ``when`` matches every request. A condition is one of::

    {"method": "POST"}  or  {"method": ["POST", "PUT"]}
    {"path": "/stripe/*"}                       a glob over the path below the bin
    {"header": "X-GitHub-Event", "value": "push"}    value: a glob; left out: present at all
    {"query": "type", "value": "invoice.*"}          the same, for a query parameter
    {"json": "data.object.status", "equals": "failed"}   a JSON value of the body (up to 1 MiB)

Globs are described in match.py (``*`` any run of characters, ``?`` one, nothing else special).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import limits
from .headers import is_token
from .match import Condition, parse_json_path
from .parse import is_number, object_of, parse_response, text_of
from .spec import Invalid, Rule


def _method(obj: dict[str, Any], where: str) -> Condition:
    where, value = f"{where}.method", obj["method"]
    methods = [value] if isinstance(value, str) else value
    if not isinstance(methods, list) or not 1 <= len(methods) <= 20:
        raise Invalid("bad_condition", f"{where} must be a method or a list of them", where)
    for method in methods:
        if not isinstance(method, str) or len(method) > 32 or not is_token(method):
            raise Invalid("bad_condition", f"{where}: {method!r} is not an HTTP method", where)
    return Condition("method", "", tuple(dict.fromkeys(m.upper() for m in methods)))


def _path(obj: dict[str, Any], where: str) -> Condition:
    where = f"{where}.path"
    glob = text_of(obj["path"], where, limits.MAX_PATTERN, "bad_condition", minimum=1)
    if not glob.startswith(("/", "*")):
        message = f"{where} is a glob over the path below the bin, starting with / (/stripe/*)"
        raise Invalid("bad_condition", message, where)
    return Condition("path", "", glob)


def _named(kind: str) -> Callable[[dict[str, Any], str], Condition]:
    def parse(obj: dict[str, Any], where: str) -> Condition:
        field = f"{where}.{kind}"
        name = text_of(obj[kind], field, limits.MAX_PATTERN, "bad_condition", minimum=1)
        if kind == "header" and not is_token(name):
            raise Invalid("bad_condition", f"{field}: {name!r} is not a header name", field)
        value = obj.get("value")
        if value is not None:
            value = text_of(value, f"{where}.value", limits.MAX_PATTERN, "bad_condition")
        return Condition(kind, name, value)

    return parse


def _json(obj: dict[str, Any], where: str) -> Condition:
    field = f"{where}.json"
    path = text_of(obj["json"], field, limits.MAX_PATTERN, "bad_condition", minimum=1)
    if parse_json_path(path) is None:
        message = f"{field}: {path!r} is not a JSON path such as data.items[0].id"
        raise Invalid("bad_condition", message, field)
    if "equals" not in obj:
        field = f"{where}.equals"
        raise Invalid("bad_condition", f'{where} needs "equals": the value to compare', field)
    wanted = obj["equals"]
    if isinstance(wanted, str):
        text_of(wanted, f"{where}.equals", limits.MAX_PATTERN, "bad_condition")
    elif not (wanted is None or isinstance(wanted, bool) or is_number(wanted)):
        message = f"{where}.equals must be text, a number, true, false or null"
        raise Invalid("bad_condition", message, f"{where}.equals")
    return Condition("json", path, wanted)


# kind -> (the other keys it takes, its parser)
KINDS: dict[str, tuple[set[str], Callable[[dict[str, Any], str], Condition]]] = {
    "method": (set(), _method),
    "path": (set(), _path),
    "header": ({"value"}, _named("header")),
    "query": ({"value"}, _named("query")),
    "json": ({"equals"}, _json),
}


def parse_condition(value: object, where: str) -> Condition:
    """Check one condition of a rule's ``when``."""
    kinds = [kind for kind in KINDS if isinstance(value, dict) and kind in value]
    if len(kinds) != 1:
        message = f"{where} must be an object with one of {', '.join(KINDS)}"
        raise Invalid("bad_condition", message, where)
    extra, parse = KINDS[kinds[0]]
    return parse(object_of(value, where, {kinds[0], *extra}), where)


def parse_rule(value: object, where: str) -> Rule:
    """Check one rule."""
    obj = object_of(value, where, {"name", "when", "response"})
    name = text_of(obj.get("name", ""), f"{where}.name", limits.MAX_RULE_NAME, "bad_rule")
    when = obj.get("when", [])
    if not isinstance(when, list) or len(when) > limits.MAX_CONDITIONS:
        message = f"{where}.when must be a list of up to {limits.MAX_CONDITIONS} conditions"
        raise Invalid("bad_rule", message, f"{where}.when")
    if obj.get("response") is None:
        raise Invalid("bad_rule", f"{where} needs a response", f"{where}.response")
    return Rule(
        name=name,
        when=tuple(parse_condition(c, f"{where}.when[{i}]") for i, c in enumerate(when)),
        response=parse_response(obj["response"], f"{where}.response"),
    )


def parse_rules(value: object, where: str = "rules") -> tuple[Rule, ...]:
    """Check the ordered list of rules (null: none)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise Invalid("bad_rule", f"{where} must be a list of rules", where)
    if len(value) > limits.MAX_RULES:
        raise Invalid("too_many_rules", f"{where}: at most {limits.MAX_RULES} rules", where)
    return tuple(parse_rule(rule, f"{where}[{i}]") for i, rule in enumerate(value))
