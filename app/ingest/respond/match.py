"""Rule conditions compiled into plain predicates over a RequestView.

Globs: ``*`` is any run of characters (``/`` included), ``?`` one character, everything else
itself; a glob matches the whole text. They are translated here rather than by
``fnmatch.translate`` because fnmatch treats ``[...]`` as a character class, and query values and
paths such as ``items[0]`` should match as written. The translation keeps matching linear: every
``*`` but the last is an atomic lazy group (``(?>.*?chunk)``), which takes the earliest match of
the chunk after it and never backtracks into it; for ``*`` and fixed-length chunks the earliest
match is always the right one, so no pattern can make a long header value take exponential time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .limits import MAX_JSON_BODY
from .view import MISSING, RequestView

Predicate = Callable[[RequestView], bool]
JsonPath = tuple[str | int, ...]
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d{1,9})\]")


@lru_cache(maxsize=2048)
def glob_regex(glob: str) -> re.Pattern[str]:
    """Translate a glob into an anchored regular expression that matches in linear time."""
    chunks = re.sub(r"\*+", "*", glob).split("*")

    def literal(chunk: str) -> str:
        return "".join("." if c == "?" else re.escape(c) for c in chunk)

    if len(chunks) == 1:
        return re.compile(r"\A" + literal(chunks[0]) + r"\Z", re.DOTALL)
    middle = "".join(f"(?>.*?{literal(c)})" for c in chunks[1:-1])
    pattern = r"\A" + literal(chunks[0]) + middle + ".*" + literal(chunks[-1]) + r"\Z"
    return re.compile(pattern, re.DOTALL)


def parse_json_path(text: str) -> JsonPath | None:
    """Split ``data.items[0].id`` into ``("data", "items", 0, "id")``; None when malformed."""
    parts: list[str | int] = []
    position = 0
    while position < len(text):
        dotted = bool(parts) and text[position] == "."
        if parts and not dotted and text[position] != "[":
            return None  # "a[0]b": a part must follow "." or be an index
        found = _PATH_PART.match(text, position + dotted)
        if found is None or (dotted and found.group(1) is None):
            return None
        key, index = found.groups()
        parts.append(int(index) if index is not None else key)
        position = found.end()
    return tuple(parts) or None


def follow(document: Any, path: JsonPath) -> Any:
    """Walk a parsed JSON document; MISSING when the path leads nowhere.

    A digit key also indexes a list (``items.0``), and an index also finds a key named by it.
    """
    node = document
    for part in path:
        if isinstance(node, dict):
            node = node.get(str(part), MISSING)
        elif isinstance(node, list):
            index = part if isinstance(part, int) else int(part) if part.isdigit() else -1
            node = node[index] if 0 <= index < len(node) else MISSING
        else:
            return MISSING
        if node is MISSING:
            return MISSING
    return node


def json_equal(found: Any, wanted: Any) -> bool:
    """Compare as JSON does: ``true`` is not ``1`` and ``1`` is ``1.0``."""
    if isinstance(found, bool) or isinstance(wanted, bool):
        return type(found) is type(wanted) and found == wanted
    if wanted is None or found is None:
        return found is wanted
    if isinstance(wanted, int | float):
        return isinstance(found, int | float) and found == wanted
    return isinstance(found, str) and found == wanted


@dataclass(frozen=True)
class Condition:
    """One part of a rule's ``when``: ``kind`` is method, path, header, query or json.

    ``subject`` is the header or query name or the JSON path; ``value`` the methods (a tuple),
    the glob (None: present at all) or the JSON value to equal.
    """

    kind: str
    subject: str
    value: Any

    def to_dict(self) -> dict[str, Any]:
        """Return the API's form (what parse.condition reads)."""
        if self.kind == "method":
            return {"method": self.value[0] if len(self.value) == 1 else list(self.value)}
        if self.kind == "path":
            return {"path": self.value}
        if self.kind == "json":
            return {"json": self.subject, "equals": self.value}
        shown: dict[str, Any] = {self.kind: self.subject}
        if self.value is not None:
            shown["value"] = self.value
        return shown

    def compile(self) -> Predicate:
        """Build the predicate that tells whether a request meets this condition."""
        return _COMPILERS[self.kind](self)

    @property
    def needs_json(self) -> bool:
        return self.kind == "json"


def _method(condition: Condition) -> Predicate:
    methods = frozenset(condition.value)
    return lambda view: view.method.upper() in methods


def _path(condition: Condition) -> Predicate:
    match = glob_regex(condition.value).match
    # The bin's own URL is "" below the bin; a glob written as "/" means it too.
    return lambda view: match(view.path or "/") is not None


def _header(condition: Condition) -> Predicate:
    name = condition.subject
    if condition.value is None:
        return lambda view: bool(view.header_values(name))
    match = glob_regex(condition.value).match
    return lambda view: any(match(v) is not None for v in view.header_values(name))


def _query(condition: Condition) -> Predicate:
    name = condition.subject
    if condition.value is None:
        return lambda view: bool(view.query_values(name))
    match = glob_regex(condition.value).match
    return lambda view: any(match(v) is not None for v in view.query_values(name))


def _json(condition: Condition) -> Predicate:
    path = parse_json_path(condition.subject)
    assert path is not None  # noqa: S101 - checked when the settings were saved
    wanted = condition.value
    spelling = _spelling(wanted)

    def check(view: RequestView) -> bool:
        if spelling is not None and not _might_spell(view.body, spelling):
            return False  # most bodies, when a rule waits for one value: nothing parsed
        document = view.json
        return document is not MISSING and json_equal(follow(document, path), wanted)

    return check


def _spelling(wanted: Any) -> bytes | None:
    """A string's JSON spelling in UTF-8, quotes included; None for other values (``1`` is
    also ``1.0`` and ``1e0``). Saved settings hold no string UTF-8 cannot encode (parse.py)."""
    if not isinstance(wanted, str):
        return None
    return json.dumps(wanted, ensure_ascii=False).encode()


# The first byte of a UTF-16 or UTF-32 byte-order mark (little or big endian).
_WIDE_BOMS = (b"\xff", b"\xfe")


def _might_spell(body: bytes | bytearray, spelling: bytes) -> bool:
    """Whether a JSON body could hold the string spelled ``spelling`` (see ``_spelling``).

    A JSON text with no backslash escapes nothing, so in UTF-8 each of its strings is spelled
    exactly as ``json.dumps`` spells it (a string that needs an escape cannot be in it at all).
    A body with a backslash, or in UTF-16 or UTF-32 (what ``json.loads`` also reads), could
    spell it otherwise: only parsing tells. A body too big to parse is not searched either: the
    view answers it MISSING without reading it.
    """
    if len(body) > MAX_JSON_BODY:
        return True
    if b"\\" in body or body[:1] in _WIDE_BOMS or b"\x00" in body[:4]:
        return True
    return spelling in body


_COMPILERS: dict[str, Callable[[Condition], Predicate]] = {
    "method": _method,
    "path": _path,
    "header": _header,
    "query": _query,
    "json": _json,
}


def all_of(predicates: tuple[Predicate, ...]) -> Predicate:
    """Combine predicates with AND (no predicates: everything matches)."""
    if len(predicates) == 1:
        return predicates[0]

    def every(view: RequestView) -> bool:
        for predicate in predicates:
            if not predicate(view):
                return False
        return True

    return every
