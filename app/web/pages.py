"""HTML pages: a shell per page; the data comes from the JSON API and the live stream."""

from __future__ import annotations

from contextlib import suppress

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from werkzeug.wrappers import Response

from app import live
from app.domain import bins
from app.extensions import db
from app.store import engine as storage
from app.store.recorder import StorageUnavailable
from app.web import access
from app.web.api import bin_dict

bp = Blueprint("views", __name__)


@bp.get("/")
def index() -> str:
    """Show the home page: create a bin, and the bins this browser holds keys for."""
    return render_template("index.html", your_bins=[bin_dict(b) for b in access.your_bins()])


@bp.post("/bins")
def create_bin() -> Response:
    """Create a bin, give this browser its key, and go to its page."""
    created = bins.create()
    access.remember(created.bin.id, created.read_key)
    return redirect(url_for("views.show_bin", bin_id=created.bin.id), code=303)


@bp.get("/bins/<bin_id>")
def show_bin(bin_id: str) -> tuple[str, int] | str:
    """Show a bin's page to a holder of its key; anyone else sees the same locked page."""
    bin_ = access.readable(bin_id)
    if bin_ is None:
        # Also what a share link lands on first: its script trades the #key for a cookie.
        return render_template("locked.html", bin_id=bin_id), 404
    bins.touch(bin_)
    key = access.remembered_keys().get(bin_.id)
    return render_template("bin.html", bin=bin_dict(bin_, key))


UNAVAILABLE = "the database is unavailable; try again shortly"


@bp.app_errorhandler(DBAPIError)
@bp.app_errorhandler(StorageUnavailable)  # from the capture writer's connections (search)
def _database_unavailable(
    err: DBAPIError | StorageUnavailable,
) -> tuple[Response | str, int, dict[str, str]]:
    """Say the database is unreachable (503 with Retry-After) instead of a bare 500."""
    current_app.logger.error("database unavailable: %s", err.__class__.__name__)
    with suppress(DBAPIError):
        db.session.rollback()
    seconds = current_app.config["HOOKSCOPE_RETRY_AFTER_SECONDS"]
    # Open pages show a banner: what failed here fails for captures too.
    live.publish_storage_status(False, seconds)
    retry = {"Retry-After": str(seconds)}
    if request.path.startswith("/api/"):
        return jsonify(error="storage_unavailable", message=UNAVAILABLE), 503, retry
    page = render_template(
        "unavailable.html",
        reload=request.method in ("GET", "HEAD"),
        creating=request.endpoint == "views.create_bin",
        retry_after=seconds,
    )
    return page, 503, retry


@bp.get("/healthz")
def health() -> Response:
    """Answer 200 when the app can reach its database."""
    db.session.execute(text("SELECT 1"))
    return jsonify(ok=True)


@bp.get("/readyz")
def ready() -> Response | tuple[Response, int, dict[str, str]]:
    """Answer 200 when the database takes writes (captures would be stored), else 503.

    Pages showing the storage banner ask this until it says yes.
    """
    if storage.writable():
        return jsonify(ok=True)
    retry = {"Retry-After": str(current_app.config["HOOKSCOPE_RETRY_AFTER_SECONDS"])}
    return jsonify(error="storage_unavailable", message=UNAVAILABLE), 503, retry
