"""A request's header section, read and judged before the app runs. Pure: bytes in, values out.

What the server (app/ingest/server.py) refuses for how a head is written, and why: each case could
be read one way here and another way by a proxy in front, which then takes the rest of the body
for another request (request smuggling), so the connection is closed after the answer.
"""

from __future__ import annotations

import re
from email.message import Message
from typing import Any

# Header limits: generous for webhook senders (some send 60+ headers and multi-kilobyte
# signatures), small enough that a request's head stays a few MiB at most.
MAX_HEADER_FIELDS = 200
MAX_HEADER_LINE = 16 * 1024


class HeadTooLarge(ValueError):
    """The request's header section is over our limits: answered 431, connection closed."""


# Requests refused for how their head is written, before the app runs (RFC 9112, 5 and 6; RFC 9110,
# 5.5 and 8.6): each could be read one way here and another way by a proxy in front, which then
# takes the rest of the body for another request (request smuggling), so the connection is closed
# after the answer. reason: (status line, what the sender is told).
REFUSED_HEADS: dict[str, tuple[bytes, str]] = {
    "name_not_token": (
        b"400 Bad Request",
        "header name {name} is not a token (letters, digits and !#$%&'*+-.^_`|~ only)",
    ),
    "bare_cr": (b"400 Bad Request", "header field {name} holds a CR that does not end its line"),
    "nul": (b"400 Bad Request", "header field {name} holds a NUL byte"),
    "incomplete": (b"400 Bad Request", "the header section ended before its empty line"),
    "length_repeated": (
        b"400 Bad Request",
        "Content-Length is sent more than once ({values}); send it once",
    ),
    "length_invalid": (
        b"400 Bad Request",
        "Content-Length {value} is not a byte count (decimal digits only, at most 18)",
    ),
    "length_and_coding": (
        b"400 Bad Request",
        "Content-Length and Transfer-Encoding are both sent; send one (RFC 9112, 6.1)",
    ),
    "coding_http10": (
        b"400 Bad Request",
        "Transfer-Encoding on an HTTP/1.0 request (RFC 9112, 6.1); send Content-Length instead",
    ),
    "coding_empty": (b"400 Bad Request", "Transfer-Encoding {value} has an empty coding"),
    "chunked_not_final": (
        b"400 Bad Request",
        "Transfer-Encoding {value} does not end with chunked (RFC 9112, 6.3)",
    ),
    "chunked_repeated": (
        b"400 Bad Request",
        "Transfer-Encoding {value} applies chunked more than once (RFC 9112, 7)",
    ),
    "coding_unknown": (
        b"501 Not Implemented",
        "transfer coding {coding} is not implemented; send the body with Content-Length or with"
        " Transfer-Encoding: chunked alone (a Content-Encoding such as gzip is stored as sent)",
    ),
}


class BadHead(ValueError):
    """The request's head is refused for a reason in ``REFUSED_HEADS``; the connection closes."""

    def __init__(self, reason: str, **details: str) -> None:
        self.status, template = REFUSED_HEADS[reason]
        # Sender-written details are shown quoted and escaped (repr), cut to 60 characters.
        super().__init__(template.format(**{k: repr(v[:60]) for k, v in details.items()}))
        self.reason = reason


class Headers(Message):
    """The parsed header section, in the shape pywsgi and gunicorn read (``email.message``)."""

    status = ""
    # The Content-Length and Transfer-Encoding fields, as (lowercase name, value), when any.
    framing: list[tuple[str, str]] | None = None

    def get(self, name: str, failobj: Any = None) -> Any:
        # email.message's get() also passes the value through its policy, which only changes
        # values with surrogates (never in Latin-1 text); pywsgi asks ~8 times a request.
        name = name.lower()
        for key, value in self._headers:
            if key.lower() == name:
                return value
        return failobj

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self.get(name, default)

    @property
    def headers(self) -> list[str]:
        return [f"{name}: {value}\r\n" for name, value in self._headers]

    @property
    def typeheader(self) -> str | None:
        return self.get("content-type")


TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_FRAMING_FIELDS = frozenset(("content-length", "transfer-encoding"))
# Field names seen before, each valid token mapped to its lowercase form: the same few dozen
# names arrive on every request, so one dict lookup stands for the token check and lower().
# Bounded: names past the bound (or long ones) take the regular expression every time.
_KNOWN_NAMES: dict[str, str] = {}
KNOWN_NAMES_MAX = 2048
KNOWN_NAME_LENGTH = 64


def _field_name(name: str) -> str:
    """Check a field name is a token (RFC 9110, 5.1) and give it in lowercase."""
    if not TOKEN.fullmatch(name):
        # Whitespace before the colon lands here too, which RFC 9112 (5.1) says to refuse.
        raise BadHead("name_not_token", name=name)
    lowered = name.lower()
    if len(_KNOWN_NAMES) < KNOWN_NAMES_MAX and len(name) <= KNOWN_NAME_LENGTH:
        _KNOWN_NAMES[name] = lowered
    return lowered


def read_headers(rfile: Any) -> Headers:
    """Read header lines up to the empty line, within our limits; names and values kept as sent."""
    found = Headers()
    pairs = found._headers
    lines = []
    while True:
        line = rfile.readline(MAX_HEADER_LINE + 1)
        if len(line) > MAX_HEADER_LINE:
            raise HeadTooLarge(f"a header line is longer than {MAX_HEADER_LINE} bytes")
        if line == b"\r\n" or line == b"\n":
            break
        if not line:
            # The sender closed before the empty line (a last line cut short ends here too, on
            # the next read): what arrived is not a whole request.
            raise BadHead("incomplete")
        if line[:1] in (b" ", b"\t"):
            # Folded continuation lines (obs-fold) are a request-smuggling device: refuse them.
            raise ValueError("folded header lines are not accepted")
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon:
            raise ValueError(f"malformed header line {line[:100]!r}")
        lowered = _KNOWN_NAMES.get(name) or _field_name(name)
        if len(pairs) >= MAX_HEADER_FIELDS:
            raise HeadTooLarge(f"more than {MAX_HEADER_FIELDS} header fields")
        value = value.strip(" \t\r\n")
        pairs.append((name, value))
        lines.append(line)
        if lowered in _FRAMING_FIELDS:
            if found.framing is None:
                found.framing = []
            found.framing.append((lowered, value))
    # RFC 9110 (5.5): a CR or NUL in a value must be refused or replaced; a request bin keeps what
    # was sent, so it refuses. Other control characters (ESC, DEL...) are kept, stored as sent and
    # escaped wherever they are shown. An LF only ever ends a line, so every CR but the ones
    # ending lines is a bare CR. Checked once over the whole head, in three C-level scans (find
    # of one byte is memchr; "in" is twice as slow).
    head = b"".join(lines)
    if head.find(b"\0") != -1 or head.count(b"\r") != head.count(b"\r\n"):
        _refuse_control_characters(lines)
    return found


def _refuse_control_characters(lines: list[bytes]) -> None:
    """Name the first header field that holds a NUL or a bare CR."""
    for line in lines:
        name = line.decode("latin-1").partition(":")[0]
        if b"\0" in line:
            raise BadHead("nul", name=name)
        if line.count(b"\r") != line.count(b"\r\n"):
            raise BadHead("bare_cr", name=name)


def check_framing(version: str, fields: list[tuple[str, str]]) -> None:
    """Refuse a body whose end could be read two ways, or that is coded in a way we do not decode.

    ``fields`` are the request's Content-Length and Transfer-Encoding fields, as (lowercase name,
    value). What passes has exactly one of them, and pywsgi frames it as everyone else would: one
    Content-Length of plain digits, or one Transfer-Encoding whose value is ``chunked``.
    """
    if len(fields) == 1:
        name, value = fields[0]
        if name == "content-length" and value.isdigit() and value.isascii() and len(value) <= 18:
            return  # the common case, in a few C-level calls
    lengths = [value for name, value in fields if name == "content-length"]
    codings = [value for name, value in fields if name == "transfer-encoding"]
    if codings:
        if version in ("HTTP/1.0", "HTTP/0.9"):
            raise BadHead("coding_http10")
        if lengths:
            raise BadHead("length_and_coding")
        _check_codings(", ".join(codings))
    elif len(lengths) > 1 or "," in lengths[0]:
        # RFC 9110 (8.6) lets a recipient take a repeated identical value ("5, 5", or two lines of
        # 5) as one. We refuse it like any other repeat: it only comes from a broken sender or a
        # proxy that merged two messages' fields, nginx and Node refuse it too, and a bin is where
        # a sender is tried out, so it should hear what such receivers would tell it.
        raise BadHead("length_repeated", values=", ".join(lengths))
    else:
        raise BadHead("length_invalid", value=lengths[0])


def _check_codings(value: str) -> None:
    """Refuse any Transfer-Encoding but ``chunked`` alone (the message says what is wrong)."""
    codings = [coding.strip(" \t").lower() for coding in value.split(",")]
    if codings == ["chunked"]:
        return
    if "" in codings:
        # RFC 9110 (5.6.1) has empty list elements ignored, but pywsgi would then not see chunked.
        raise BadHead("coding_empty", value=value)
    if codings[-1] != "chunked":
        raise BadHead("chunked_not_final", value=value)
    if codings.count("chunked") > 1:
        raise BadHead("chunked_repeated", value=value)
    raise BadHead("coding_unknown", coding=next(c for c in codings if c != "chunked"))
