"""Keep the browser side locked down: strict response headers, a cookie written only when it
changed (Secure behind HTTPS), and nothing of a user's kept in a cache."""

from __future__ import annotations

from flask import Flask, Response, request
from flask.sessions import SecureCookieSessionInterface, SessionMixin

from app.web import csp_reports

CSP = "; ".join(
    [
        "default-src 'self'",
        # 'report-sample' puts the first characters of a blocked inline script or style in the
        # report, which is what tells an injection from an extension.
        "script-src 'self' 'report-sample'",
        "style-src 'self' 'report-sample'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "object-src 'none'",
        f"report-uri {csp_reports.PATH}",
    ]
)
# Over HTTPS, Chromium reports through the Reporting API: report-to names a group that the
# Reporting-Endpoints header maps to a URL, and report-uri is then ignored. Over plain HTTP
# Chromium ignores Reporting-Endpoints but still obeys report-to, and would report nowhere, so
# there the policy names report-uri alone.
SECURE_CSP = f"{CSP}; report-to {csp_reports.GROUP}"
REPORTING_ENDPOINTS = f'{csp_reports.GROUP}="{csp_reports.PATH}"'
# Answers that hold nothing of anyone's: /healthz and /readyz. (Marked no-store, the page's
# /readyz checks went missing from Chromium's Resource Timing, which the banner's tests read.)
CACHEABLE_BLUEPRINTS = frozenset({"health"})


class SessionInterface(SecureCookieSessionInterface):
    """Write the session cookie only when it changed, Secure whenever the request came in over
    HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        # request.is_secure follows X-Forwarded-Proto only from trusted proxies (ProxyFix).
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure

    def should_set_cookie(self, app: Flask, session: SessionMixin) -> bool:
        # The cookie holds the browser's read keys. A response carries the cookie as its request
        # found it, and the browser takes whichever Set-Cookie arrives last: a favicon that left
        # before a share link's key was remembered and came back after it put the old cookie
        # back. So only a change writes it (SESSION_REFRESH_EACH_REQUEST is off: the cookie
        # lasts PERMANENT_SESSION_LIFETIME from its last change), and a static file never does.
        return super().should_set_cookie(app, session) and request.endpoint != "static"


def init_app(app: Flask) -> None:
    app.session_interface = SessionInterface()
    app.after_request(_harden)


def _harden(response: Response) -> Response:
    """Send a strict CSP, nosniff and no-referrer on every response, unless a view set its own;
    keep everything but static files out of caches."""
    if request.is_secure:
        response.headers.setdefault("Content-Security-Policy", SECURE_CSP)
        response.headers.setdefault("Reporting-Endpoints", REPORTING_ENDPOINTS)
    else:
        response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if request.endpoint != "static" and request.blueprint not in CACHEABLE_BLUEPRINTS:
        # Pages and API answers carry read keys, share links and captured data: a shared
        # cache or the browser's disk must not keep them. Static files are the same for all.
        response.headers.setdefault("Cache-Control", "no-store")
    return response
