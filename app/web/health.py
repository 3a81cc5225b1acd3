"""Health and readiness, for load balancers, orchestrators and the pages' storage banner."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text

from app.extensions import db
from app.store import engine
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

    Pages showing the storage banner ask this until it says yes.
    """
    if engine.writable():
        return jsonify(ok=True)
    retry = {"Retry-After": str(current_app.config["HOOKSCOPE_RETRY_AFTER_SECONDS"])}
    return refusal(503, "storage_unavailable", UNAVAILABLE, retry, as_json=True)
