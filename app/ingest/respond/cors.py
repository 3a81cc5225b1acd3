"""CORS for a bin that turns it on: answer preflights, and let pages read the answers.

Credentials are never allowed (no Access-Control-Allow-Credentials), so a page elsewhere can
read a bin's answers but never with the visitor's cookies for this server.
"""

from __future__ import annotations

import re

from .answer import Headers, custom
from .headers import is_token
from .view import RequestView

_HEADER_LIST = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+(\s*,\s*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*")


def is_preflight(view: RequestView) -> bool:
    """Tell whether a request is a CORS preflight."""
    return (
        view.method == "OPTIONS"
        and view.header("Origin") is not None
        and view.header("Access-Control-Request-Method") is not None
    )


def cors_headers(origins: tuple[str, ...], view: RequestView) -> Headers:
    """Return the Access-Control-* headers for this request (none for an origin not allowed)."""
    origin = view.header("Origin")
    if "*" in origins:
        headers: list[tuple[str, str]] = [("Access-Control-Allow-Origin", "*")]
    elif origin is not None and origin.lower() in origins:
        headers = [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
    else:
        return (("Vary", "Origin"),)
    if not is_preflight(view):
        return (*headers, ("Access-Control-Expose-Headers", "*"))
    method = view.header("Access-Control-Request-Method") or ""
    if is_token(method):
        headers.append(("Access-Control-Allow-Methods", method))
    asked = view.header("Access-Control-Request-Headers")
    if asked and len(asked) <= 1000 and _HEADER_LIST.fullmatch(asked.strip()):
        headers.append(("Access-Control-Allow-Headers", asked.strip()))
    return tuple(headers)


# The answer to a preflight; its Access-Control-* headers are added per request.
PREFLIGHT = custom(204, b"", "text/plain; charset=utf-8", source="preflight")
