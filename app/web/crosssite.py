"""Refuse changes that a page on another site makes the browser send.

``SameSite=Lax`` keeps the cookie off a cross-site POST, so a forged form cannot ride on the
user's cookie; but the change still ran without it, and its ``Set-Cookie`` replaced the user's
cookie with one holding only the forger's new bin. So a change (any method but GET, HEAD and
OPTIONS) is refused with 403 before its view runs, when the browser says where it came from:

- ``Sec-Fetch-Site`` (every current browser says it, and no page can forge it): ``same-origin``
  passes; ``cross-site`` and ``same-site`` are refused. Same-site is another origin under the
  same registrable domain: a sibling subdomain (say a capture host, hooks.example.com beside
  app.example.com, which serves what strangers' bins answer) or another port of the same host.
  The browser sends the ``Lax`` cookie along with such a request, and such a page can set
  cookies for the whole domain, so it is trusted no more than any other site.
- Otherwise (``none``, or an older browser), ``Origin`` decides: it must be the app's own, the
  origin of HOOKSCOPE_PUBLIC_URL or the one this request came in on (scheme and host as seen
  through the trusted proxies, HOOKSCOPE_PROXY_COUNT). The request's own origin is always safe
  to accept: a page can only have it by being served from this very address. ``null``
  (sandboxed frames, data: URLs) is refused.
- Neither header: not a page's request (curl, scripts, the CLI); it passes. Browsers send
  ``Origin`` with every cross-origin POST, PUT, PATCH and DELETE.

A request with ``Authorization: Bearer`` passes whatever it says: a page on another site cannot
send that header without a CORS preflight, which this server never grants, and the read key is
the credential, not the cookie.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Flask, current_app, request

from app.logs import printable
from app.web import access
from app.web.errors import Refused

log = logging.getLogger("hookscope.web")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_PORTS = {"http": 80, "https": 443}
# Blueprints whose changes are not the user's: browsers send CSP reports on their own.
EXEMPT_BLUEPRINTS = frozenset({"csp_reports"})
_WHO_MAY = (
    "Hookscope takes changes only from its own pages, or from scripts that send"
    " Authorization: Bearer <read key>"
)
# What each Sec-Fetch-Site value means here: None passes, a message refuses, and a value not
# listed ("none", or one a future browser invents) leaves the decision to Origin.
FETCH_SITE: dict[str, str | None] = {
    "same-origin": None,
    "same-site": (
        "this change came from a page on another site of the same domain"
        " (Sec-Fetch-Site: same-site), which is trusted no more than any other site; " + _WHO_MAY
    ),
    "cross-site": (
        "this change came from a page on another site (Sec-Fetch-Site: cross-site); " + _WHO_MAY
    ),
}


def origin_of(url: str) -> str | None:
    """Return ``scheme://host[:port]`` of a URL as browsers write it, or None if it has none."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    shown_port = "" if port in (None, DEFAULT_PORTS[scheme]) else f":{port}"
    return f"{scheme}://{host}{shown_port}"


def refusal_reason(
    method: str,
    fetch_site: str | None,
    origin: str | None,
    own_origins: frozenset[str],
    bearer: bool,
) -> str | None:
    """Say why a request must be refused as another site's doing, or None when it may proceed."""
    if method.upper() in SAFE_METHODS or bearer:
        return None
    site = (fetch_site or "").strip().lower()
    if site in FETCH_SITE:
        return FETCH_SITE[site]
    if origin is None:
        return None
    if origin_of(origin) in own_origins:
        return None
    own = " or ".join(sorted(own_origins)) or "this server's address"
    return (
        f"this change came from a page at {origin!r}, not from Hookscope's own address ({own});"
        " if that is where you open Hookscope, set HOOKSCOPE_PUBLIC_URL to it (behind a proxy,"
        f" set HOOKSCOPE_PROXY_COUNT too). {_WHO_MAY}"
    )


def own_origins() -> frozenset[str]:
    """Return the origins this app's pages are served from: HOOKSCOPE_PUBLIC_URL's and this
    request's own."""
    urls = (current_app.config["HOOKSCOPE_PUBLIC_URL"], request.host_url)
    return frozenset(origin for url in urls if url and (origin := origin_of(url)))


def _refuse_other_sites() -> None:
    """Refuse a change another site's page sent, before any view or the session is touched."""
    if request.blueprint in EXEMPT_BLUEPRINTS:
        return
    reason = refusal_reason(
        request.method,
        request.headers.get("Sec-Fetch-Site"),
        request.headers.get("Origin"),
        own_origins(),
        access.bearer_token() is not None,
    )
    if reason is None:
        return
    log.warning(
        "cross-site change refused method=%s path=%s origin=%s fetch-site=%s",
        printable(request.method),
        printable(request.path),
        printable(request.headers.get("Origin", "-")),
        printable(request.headers.get("Sec-Fetch-Site", "-")),
    )
    raise Refused(403, "cross_site_request", reason)


def init_app(app: Flask) -> None:
    # First among the app's checks: before CSRF (whose "token missing" would hide the reason)
    # and before the flood limits count the request.
    app.before_request(_refuse_other_sites)
