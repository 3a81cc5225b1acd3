"""``GET /metrics``: Prometheus text format, when HOOKSCOPE_METRICS=true (app/runtime/metrics.py).

With HOOKSCOPE_METRICS_TOKEN set, a scrape needs ``Authorization: Bearer <token>``, compared in
constant time. Without it the figures are public to whoever reaches the port: counts of captures
and refusals, no bin ids, no sender data.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Flask, Response, current_app, request

from app.runtime import exporter, metrics
from app.web.errors import refusal

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def scrape() -> Response:
    """Every worker's counts, in Prometheus text format."""
    token = current_app.config["HOOKSCOPE_METRICS_TOKEN"]
    if token and not _bearer_matches(token):
        return refusal(
            401,
            "unauthorized",
            "this server's metrics need Authorization: Bearer <token>"
            " (the token is HOOKSCOPE_METRICS_TOKEN)",
            {"WWW-Authenticate": 'Bearer realm="metrics"'},
            as_json=False,
        )
    from prometheus_client import CONTENT_TYPE_LATEST

    exporter.flush()  # this worker's latest counts; the others' are at most a second old
    response = Response(exporter.exporter().render(), mimetype="text/plain")
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    response.headers["Cache-Control"] = "no-store"
    return response


def _bearer_matches(token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def init_app(app: Flask) -> None:
    """Count and serve metrics when HOOKSCOPE_METRICS is on; otherwise /metrics is a 404."""
    if app.config["HOOKSCOPE_METRICS"]:
        metrics.enable()
        app.register_blueprint(bp)
