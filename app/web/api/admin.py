"""The operator's API: every bin, biggest first (bytes stored or traffic), and deleting any.

Needs HOOKSCOPE_ADMIN_TOKEN as ``Authorization: Bearer <token>`` (or the /admin page's session);
a wrong token and a missing one get the same 401 (app/web/operators.py). Each call is logged
with the operator's identity. Read keys and ingest secrets are never part of an answer.
"""

from __future__ import annotations

from flask import Response, current_app, jsonify, request

from app import live
from app.extensions import under_gevent
from app.ingest import tally
from app.store import admin, bins
from app.store.budget import figures_of
from app.web import operators
from app.web.api import bp
from app.web.api.params import int_arg
from app.web.errors import Refused


@bp.get("/admin/bins")
def admin_bins() -> Response:
    """List every bin, the most bytes (or traffic) first, with the instance's figures."""
    who = operators.operator()
    rows, cursor = listing()
    operators.log_action(who, "list", after=request.args.get("after") or "-")
    ceiling = current_app.config["HOOKSCOPE_BIN_MAX_BYTES"]
    return jsonify(
        bins=[row.to_dict(ceiling) for row in rows], next=cursor, storage=figures_of(current_app)
    )


def listing() -> tuple[list[admin.Row], str | None]:
    """Read the page the query asks for (limit, after, sort), or say what is wrong with it."""
    limit = int_arg("limit", admin.PAGE_DEFAULT, 1, admin.PAGE_MAX) or admin.PAGE_DEFAULT
    sort = sort_arg()
    if not under_gevent():
        # No flushing greenlet outside gunicorn (tests): add this process's counts first.
        tally.flush(current_app._get_current_object())  # type: ignore[attr-defined]
    try:
        return admin.page(limit, request.args.get("after") or None, sort)
    except admin.BadCursor:
        message = "after must be the next value of a previous page"
        raise Refused(400, "bad_parameter", message) from None


def sort_arg() -> str:
    """The sort the query asks for (bytes by default), or say it is not one."""
    sort = request.args.get("sort", "bytes")
    if sort not in admin.SORTS:
        message = f"sort must be one of: {', '.join(admin.SORTS)}, got {sort[:40]!r}"
        raise Refused(400, "bad_parameter", message)
    return sort


@bp.delete("/admin/bins/<bin_id>")
def admin_delete_bin(bin_id: str) -> tuple[str, int]:
    """Delete any bin and everything it holds."""
    who = operators.operator()
    if bins.get(bin_id) is None:
        raise Refused(404, "bin_not_found", f"no bin {bin_id[:64]!r}")
    remove(who, bin_id)
    return "", 204


def remove(who: str, bin_id: str) -> None:
    """Delete a bin as the operator: tell its open pages, log who did it."""
    bins.delete_bin(bin_id)
    live.publish_bin_deleted(bin_id)
    operators.log_action(who, "delete", bin=bin_id)
