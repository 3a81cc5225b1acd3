"""The browser and API side: pages, the JSON API, Socket.IO handlers, access, security headers."""

from __future__ import annotations

from flask import Flask

from app.extensions import csrf

# Imported with the package: Flask-SocketIO keeps handlers declared before the first app binds
# Socket.IO and gives them to every app's server; declared later, only the first app's has them.
from app.web import (
    admin,
    api,
    crosssite,
    csp_reports,
    errors,
    health,
    limits,
    metrics,
    pages,
    security,
    sockets,  # noqa: F401 - the handlers register themselves
)


def init_app(app: Flask) -> None:
    """Register the pages, the API, the health checks, CSP reports and metrics, with their
    protections."""
    security.init_app(app)
    crosssite.init_app(app)  # before CSRF: a forged change is refused as such, not as tokenless
    csrf.init_app(app)
    # API calls are checked by how they authenticate (app/web/api/); captures never reach Flask.
    csrf.exempt(api.bp)
    # Browsers send violation reports without cookies or tokens.
    csrf.exempt(csp_reports.bp)
    for blueprint in (api.bp, pages.bp, admin.bp, health.bp, csp_reports.bp):
        app.register_blueprint(blueprint)
    metrics.init_app(app)
    errors.init_app(app)
    limits.init_app(app)  # after the routes: it applies the limits they declare
