"""Choose where a capture goes: ``--route RULE=URL`` in order, else every ``--to`` URL. Pure.

A rule is one of::

    path:/stripe/*              the path below the bin matches the glob (* crosses "/")
    header:X-GitHub-Event=push  a header (any case) has a value matching the glob
    header:X-Shopify-Topic      a header is there, whatever its value
    event:stripe:invoice.*      the provider event, as ``hookscope tail`` names it, matches

Globs are fnmatch's (``*``, ``?``, ``[abc]``), case-sensitive. The first route whose rule
matches takes the capture; a capture that no route takes goes to every ``--to`` target.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Protocol

from app.inspect.provider_events import ProviderEvent

# The rule ends at the first "=http://" or "=https://"; the target URL is the rest.
_ROUTE = re.compile(r"(?P<rule>.*?)=(?P<url>https?://.+)", re.DOTALL)
KINDS = ("path", "header", "event")


class BadRoute(ValueError):
    """A --route that cannot be read; the message shows the syntax."""


class Routed(Protocol):
    """What a rule looks at."""

    path: str
    headers: list[list[str]]

    @property
    def event(self) -> ProviderEvent | None: ...


@dataclass(frozen=True)
class Rule:
    kind: str  # path, header or event
    pattern: str  # the glob ("" for a header that only has to be there)
    name: str = ""  # the header's name, for kind header

    def matches(self, capture: Routed) -> bool:
        return _MATCHERS[self.kind](self, capture)


@dataclass(frozen=True)
class Route:
    rule: Rule
    target: str
    text: str  # as given, for messages


def _path(rule: Rule, capture: Routed) -> bool:
    return fnmatchcase(capture.path or "/", rule.pattern)


def _header(rule: Rule, capture: Routed) -> bool:
    wanted = rule.name.lower()
    return any(
        name.lower() == wanted and (not rule.pattern or fnmatchcase(value, rule.pattern))
        for name, value in capture.headers
    )


def _event(rule: Rule, capture: Routed) -> bool:
    event = capture.event
    return event is not None and fnmatchcase(str(event), rule.pattern)


_MATCHERS: dict[str, Callable[[Rule, Routed], bool]] = {
    "path": _path,
    "header": _header,
    "event": _event,
}

SYNTAX = (
    "write a route as path:GLOB=URL, header:NAME=GLOB=URL, header:NAME=URL or event:GLOB=URL, "
    "for example 'path:/stripe/*=http://localhost:4242/webhook'"
)


def parse_route(text: str) -> Route:
    """Read one ``--route`` value."""
    found = _ROUTE.fullmatch(text)
    if found is None:
        raise BadRoute(f"--route {text!r} has no target URL: {SYNTAX}")
    kind, colon, pattern = found["rule"].partition(":")
    if not colon or kind not in KINDS:
        raise BadRoute(f"--route {text!r}: the rule must start with path:, header: or event:")
    if kind == "header":
        name, _, pattern = pattern.partition("=")
        if not name.strip():
            raise BadRoute(f"--route {text!r}: name the header, as header:X-GitHub-Event=push")
        return Route(Rule(kind, pattern, name.strip()), found["url"], text)
    if not pattern:
        raise BadRoute(f"--route {text!r}: give a glob after {kind}:")
    return Route(Rule(kind, pattern), found["url"], text)


def targets_for(
    capture: Routed, routes: Sequence[Route], defaults: Sequence[str]
) -> tuple[str, ...]:
    """Return where a capture goes: the first matching route's target, else every default."""
    for route in routes:
        if route.rule.matches(capture):
            return (route.target,)
    return tuple(defaults)
