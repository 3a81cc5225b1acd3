"""What goes out when a capture is sent again: its method, headers and body, with edits. Pure.

Hop-by-hop headers described the sender's connection to Hookscope, not the request, and go;
Host and the body's framing are set by the client (wire.py). Everything else goes out as
captured, in order, duplicates kept, unless the caller edits it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from app.domain.forwarding import forward_url
from app.inspect import signatures

from .wire import TOKEN

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"})
MAX_EDITED_HEADERS = 200
EDITS = ("url", "method", "headers", "body", "body_base64", "append_path", "resign")


class EditError(ValueError):
    """An edit that cannot be sent: a code for the API and a message saying what to fix."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Outgoing:
    method: str
    url: str
    headers: list[list[str]]
    body: bytes
    edited: bool = False
    resigned: str | None = None


def capture_headers(headers: Sequence[Sequence[str]]) -> list[list[str]]:
    """Drop the hop-by-hop headers, and any the capture's Connection header named."""
    named = {
        token.strip().lower()
        for name, value in headers
        if str(name).lower() == "connection"
        for token in str(value).split(",")
    }
    return [
        [str(n), str(v)]
        for n, v in headers
        if str(n).lower() not in HOP_BY_HOP and str(n).lower() not in named
    ]


def edited(
    base: Outgoing, data: Mapping[str, Any], now: int, *, path: str = "", query: str = ""
) -> Outgoing:
    """Apply an API caller's edits (method, headers, body or body_base64, append_path, resign).

    ``path`` and ``query`` are the capture's path below the bin and query string, added to
    the URL when ``append_path`` is true.
    """
    unknown = set(data) - set(EDITS)
    if unknown:
        raise EditError("bad_json", f"unknown field(s): {', '.join(sorted(unknown))}")
    out = base
    if "method" in data:
        method = data["method"]
        if not isinstance(method, str) or not TOKEN.fullmatch(method) or len(method) > 32:
            raise EditError("bad_method", "method must be an HTTP method name, like POST")
        out = replace(out, method=method, edited=True)
    if "headers" in data:
        out = replace(out, headers=_headers(data["headers"]), edited=True)
    if "body" in data and "body_base64" in data:
        raise EditError("bad_body", "send body (text) or body_base64, not both")
    if "body" in data:
        if not isinstance(data["body"], str):
            raise EditError("bad_body", "body must be text; send bytes as body_base64")
        out = replace(out, body=data["body"].encode("utf-8", "surrogatepass"), edited=True)
    if "body_base64" in data:
        out = replace(out, body=_base64(data["body_base64"]), edited=True)
    if data.get("append_path") is True:
        out = replace(out, url=forward_url(out.url, path, query))
    elif data.get("append_path") not in (None, False):
        raise EditError("bad_json", "append_path must be true or false")
    if data.get("resign") is not None:
        out = _resigned(out, data["resign"], now)
    return out


def _headers(value: object) -> list[list[str]]:
    if (
        not isinstance(value, list)
        or len(value) > MAX_EDITED_HEADERS
        or not all(
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)
            for pair in value
        )
    ):
        raise EditError(
            "bad_headers",
            f'headers must be a list of ["name", "value"] pairs (at most {MAX_EDITED_HEADERS})',
        )
    return [[name, val] for name, val in value]


def _base64(value: object) -> bytes:
    if not isinstance(value, str):
        raise EditError("bad_body", "body_base64 must be base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise EditError("bad_body", "body_base64 is not valid base64") from None


def _resigned(out: Outgoing, value: object, now: int) -> Outgoing:
    given = value if isinstance(value, dict) else {}
    scheme, secret = given.get("scheme"), given.get("secret")
    if set(given) != {"scheme", "secret"} or scheme not in signatures.SCHEMES or not secret:
        names = ", ".join(signatures.SCHEMES)
        raise EditError(
            "bad_resign", f'resign must be {{"scheme": one of {names}, "secret": "..."}}'
        )
    try:
        headers = signatures.resign(scheme, str(secret), out.headers, out.body, now)
    except signatures.BadSecret as err:
        raise EditError("bad_resign", f"{scheme}: {err}") from None
    return replace(out, headers=headers, resigned=scheme)
