"""Which response headers a bin may set, and the checks on names and values.

A custom response is served from the capture origin, which may be the UI's origin too; so anything
that reaches beyond the one response (cookies, service workers, HSTS, site data, alternative
services, reporting) or that the server itself owns (framing, hop-by-hop, the safety headers) is
refused when the settings are saved, with the reason and the whole list.
"""

from __future__ import annotations

import re

TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Field values: no control characters but horizontal tab (RFC 9110, 5.5); CR and LF would split
# the header, NUL truncates it in some servers.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

_HOP_BY_HOP = "hop-by-hop: it belongs to the connection, which the server manages"
_COOKIE = "it would set a cookie on this server's origin, which the bin pages share"
REFUSED: dict[str, str] = {
    "set-cookie": _COOKIE,
    "set-cookie2": _COOKIE,
    "service-worker-allowed": "it widens what a service worker may control on this origin",
    "clear-site-data": "it clears the browser's data for this origin, the bin pages' included",
    "strict-transport-security": "HSTS pins the whole host to HTTPS; that is the operator's call",
    "refresh": "it sends the browser elsewhere without a click",
    "alt-svc": "it moves the browser's later connections to this host elsewhere",
    "nel": "it sets up error reporting for the whole origin",
    "report-to": "it sets up reporting for the whole origin",
    "set-login": "it changes the browser's sign-in status for the whole origin",
    "connection": _HOP_BY_HOP,
    "keep-alive": _HOP_BY_HOP,
    "proxy-connection": _HOP_BY_HOP,
    "proxy-authenticate": _HOP_BY_HOP,
    "te": _HOP_BY_HOP,
    "trailer": _HOP_BY_HOP,
    "transfer-encoding": _HOP_BY_HOP,
    "upgrade": _HOP_BY_HOP,
    "content-length": "framing: the server computes it from the body",
    "x-frame-options": "framing: whether other pages may frame the answer is the server's call",
    "content-type": "set it with the content_type field",
    "content-security-policy": "every custom answer carries Content-Security-Policy: sandbox",
    "x-content-type-options": "every custom answer carries X-Content-Type-Options: nosniff",
}
REFUSED_PREFIXES: dict[str, str] = {
    "access-control-": "CORS headers come from the bin's cors setting",
}
REFUSED_LIST = ", ".join(
    [*(name.title() for name in REFUSED), *(p.title() + "*" for p in REFUSED_PREFIXES)]
)


def refusal(name: str) -> str | None:
    """Say why a response may not set this header, or None when it may."""
    lowered = name.lower()
    reason = REFUSED.get(lowered)
    if reason is not None:
        return reason
    return next((why for p, why in REFUSED_PREFIXES.items() if lowered.startswith(p)), None)


def is_token(name: str) -> bool:
    """Tell whether ``name`` is an HTTP token (what a header name must be)."""
    return TOKEN.fullmatch(name) is not None


def has_control(value: str) -> bool:
    """Tell whether a header value holds a character that may not appear in one."""
    return _CONTROL.search(value) is not None


def wsgi_value(value: str) -> str:
    """Turn header text into a WSGI header string: its UTF-8 bytes, one character per byte."""
    if value.isascii():
        return value
    return value.encode("utf-8").decode("latin-1")
