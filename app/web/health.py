"""Health and readiness, for load balancers, orchestrators and the pages' storage banner."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text

from app.extensions import db
from app.store import engine
from app.store.budget import figures_of
from app.web.errors import UNAVAILABLE, refusal

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def health() -> Response:
    """Answer 200 when the app can reach its database."""
    db.session.execute(text("SELECT 1"))
    return jsonify(ok=True)


@bp.get("/readyz")
def ready() -> Response:
    """Answer 200 when the database takes writes (captures would be stored), else 503.

    Pages showing the storage banner ask this until it says yes. ``storage`` says how full the
    instance is: at its budget (HOOKSCOPE_MAX_STORAGE_BYTES) the heaviest bins are refused,
    below the disk's margin (HOOKSCOPE_MIN_FREE_DISK_BYTES) every capture is.
    """
    if engine.writable():
        return jsonify(ok=True, storage=figures_of(current_app))
    retry = {"Retry-After": str(current_app.config["HOOKSCOPE_RETRY_AFTER_SECONDS"])}
    return refusal(503, "storage_unavailable", UNAVAILABLE, retry, as_json=True)
