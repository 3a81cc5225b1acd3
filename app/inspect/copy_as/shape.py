"""What every copy-as snippet shares: which headers it sends, and how it holds the body."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# Bodies up to this size are written into the snippet when no file name is given for them;
# past it, and for binary bodies, cURL and HTTPie read the downloaded raw body instead.
INLINE_MAX_BYTES = 64 * 1024

# They describe the sender's connection to Hookscope, not the request: the tool makes its own.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# The tool sets these from the URL and the body it sends.
FRAMING = frozenset({"host", "content-length"})
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_BAD_VALUE = re.compile(r"[\x00\r\n]")


@dataclass(frozen=True)
class Snippet:
    tool: str  # "curl", "httpie", "python", "fetch"
    code: str
    notes: list[str] = field(default_factory=list)  # where the snippet differs from the capture


@dataclass(frozen=True)
class Shaped:
    """A captured request reduced to what a tool should be told."""

    method: str
    url: str
    headers: list[tuple[str, str]]  # in order, duplicates kept
    body: bytes
    text: str | None  # the body as text when it is UTF-8 without NUL bytes
    notes: list[str]

    def has(self, name: str) -> bool:
        """Tell whether the request keeps a header of this name (any case)."""
        return any(n.lower() == name.lower() for n, _ in self.headers)


def shape(method: str, url: str, headers: Sequence[Sequence[str]], body: bytes) -> Shaped:
    """Keep the headers a tool can be told about, and say which were left to it or out."""
    kept: list[tuple[str, str]] = []
    left: list[str] = []
    dropped: list[str] = []
    invalid: list[str] = []
    for name, value in ((str(n), str(v)) for n, v in headers):
        lower = name.lower()
        if lower in FRAMING or lower in HOP_BY_HOP:
            (left if lower in FRAMING or lower == "transfer-encoding" else dropped).append(name)
        elif not _TOKEN.fullmatch(name) or _BAD_VALUE.search(value):
            invalid.append(name)
        else:
            kept.append((name, value))
    notes = []
    if left:
        notes.append(f"Left to the tool, which sets them from the URL and body: {_names(left)}.")
    if dropped:
        notes.append(f"Left out, as they describe the sender's connection: {_names(dropped)}.")
    if invalid:
        notes.append(f"Left out, as HTTP cannot carry their name or value: {_names(invalid)}.")
    return Shaped(method, url, kept, body, body_text(body), notes)


def body_text(body: bytes) -> str | None:
    """Return the body as text if it is UTF-8 without NUL bytes, else None."""
    if b"\x00" in body:
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def to_latin1(value: str) -> str:
    """Spell a value's UTF-8 bytes one character each (what fetch's ByteString headers take)."""
    return value.encode("utf-8").decode("latin-1")


def comment(prefix: str, notes: list[str]) -> list[str]:
    """Write notes as comment lines of a script, wrapped for reading."""
    return [
        prefix + line for note in notes for line in textwrap.wrap(note, 92, break_on_hyphens=False)
    ]


def _names(names: list[str]) -> str:
    return ", ".join(dict.fromkeys(names))


def has_dot_segments(url: str) -> bool:
    """Tell whether a URL's path holds "." or ".." segments, which most tools remove."""
    path = urlsplit(url).path
    return any(segment in (".", "..") for segment in path.split("/"))
