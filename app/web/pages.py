"""HTML pages: a shell per page; the data comes from the JSON API and the live stream."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from werkzeug.wrappers import Response

from app.store import bins
from app.web import access
from app.web.limits import limited
from app.web.links import bin_dict

bp = Blueprint("pages", __name__)


@bp.get("/")
def index() -> str:
    """Show the home page: create a bin, and the bins this browser holds keys for."""
    return render_template("index.html", your_bins=[bin_dict(b) for b in access.your_bins()])


@bp.post("/bins")
@limited("HOOKSCOPE_RATE_LIMIT_CREATE", scope="create-bin")
def create_bin() -> Response:
    """Create a bin, give this browser its key, and go to its page."""
    created = bins.create()
    access.remember(created.bin.id, created.read_key)
    return redirect(url_for("pages.show_bin", bin_id=created.bin.id), code=303)


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
