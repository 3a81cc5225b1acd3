"""Errors as answers, the same for every route: JSON under /api/, plain text elsewhere.

Everything a client can act on is ``{"error": "<code>", "message": "<what to do>"}`` with a status,
raised anywhere as ``Refused`` or answered with ``refusal``. ``is_api`` is the one place that
decides whether a path is the API's. The database being unreachable is answered here too: 503
with Retry-After, and for pages a page that says so and reloads itself.
"""

from __future__ import annotations

from contextlib import suppress

from flask import Flask, current_app, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from app import live
from app.domain.bins import Invalid, NotAllowed
from app.extensions import db
from app.store.errors import StorageUnavailable

API_PREFIX = "/api/"
UNAVAILABLE = "the database is unavailable; try again shortly"


class Refused(Exception):
    """An error the client can act on: a status, a machine code, a human message."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def is_api(path: str | None = None) -> bool:
    """Tell whether ``path`` (this request's by default) belongs to the JSON API."""
    return (request.path if path is None else path).startswith(API_PREFIX)


def refusal(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    *,
    as_json: bool | None = None,
) -> Response:
    """Answer an error: JSON for the API (or when ``as_json``), plain text for anything else."""
    if is_api() if as_json is None else as_json:
        response = jsonify(error=code, message=message)
    else:
        response = Response(message + "\n", mimetype="text/plain")
    response.status_code = status
    response.headers.update(headers or {})
    return response


def init_app(app: Flask) -> None:
    app.register_error_handler(
        Refused, lambda err: refusal(err.status, err.code, err.message, err.headers)
    )
    app.register_error_handler(Invalid, lambda err: refusal(400, err.code, str(err)))
    app.register_error_handler(NotAllowed, lambda err: refusal(403, err.code, str(err)))
    app.register_error_handler(CSRFError, _csrf_failed)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(DBAPIError, _database_unavailable)
    app.register_error_handler(StorageUnavailable, _database_unavailable)


def _csrf_failed(err: CSRFError) -> Response | CSRFError:
    if not is_api():
        return err
    message = (
        f"{err.description} A change made with the browser's cookie needs the X-CSRFToken header"
        " from the page's csrf-token meta tag; scripts use Authorization: Bearer <read key>."
    )
    return refusal(400, "csrf_failed", message)


def _http_error(err: HTTPException) -> Response | HTTPException:
    """Answer JSON for the API's errors (unknown URLs included); pages keep Flask's HTML."""
    if not is_api():
        return err
    code = (err.name or "error").lower().replace(" ", "_")
    return refusal(err.code or 500, code, err.description or "")


def _database_unavailable(err: DBAPIError | StorageUnavailable) -> Response | tuple[str, int, dict]:
    """Say the database is unreachable (503 with Retry-After) instead of a bare 500."""
    current_app.logger.error("database unavailable: %s", err.__class__.__name__)
    with suppress(DBAPIError):
        db.session.rollback()
    seconds = current_app.config["HOOKSCOPE_RETRY_AFTER_SECONDS"]
    # Open pages show a banner: what failed here fails for captures too.
    live.publish_storage_status(False, seconds)
    retry = {"Retry-After": str(seconds)}
    if is_api():
        return refusal(503, "storage_unavailable", UNAVAILABLE, retry)
    page = render_template(
        "unavailable.html",
        reload=request.method in ("GET", "HEAD"),
        creating=request.endpoint == "pages.create_bin",
        retry_after=seconds,
    )
    return page, 503, retry
