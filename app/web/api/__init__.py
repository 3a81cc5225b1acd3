"""JSON API under ``/api/v1``, authorised by the bin's read key (Bearer token or cookie).

One blueprint; its routes live by resource: app/web/api/bins.py, app/web/api/requests.py,
app/web/api/usage.py.
Errors are ``{"error", "message"}`` (app/web/errors.py); reading query parameters and bodies,
and finding a bin the caller may read, are app/web/api/params.py's.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from app.extensions import csrf
from app.web import access, openapi

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# The readable docs live beside the prefix, at /api/docs.
bp.record_once(lambda s: s.app.add_url_rule("/api/docs", "api_docs", openapi.docs_page))


@bp.before_request
def _csrf_for_cookie_callers() -> None:
    """Ask for the CSRF token only where a browser's cookie is the credential.

    A Bearer key cannot be sent by another site, and a caller without the cookie holds nothing
    a forged request could use; a change riding on the cookie must carry X-CSRFToken.
    """
    if request.method in ("GET", "HEAD", "OPTIONS") or access.bearer_token() is not None:
        return
    if current_app.config["SESSION_COOKIE_NAME"] in request.cookies:
        csrf.protect()


@bp.get("/openapi.json")
def openapi_spec() -> Response:
    """Describe this API in OpenAPI 3.1, with this server's address and limits."""
    return Response(openapi.spec_json(), mimetype="application/json")


from app.web.api import bins, replay, requests, usage  # noqa: E402, F401 - the routes, registered on bp
