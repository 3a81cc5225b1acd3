"""HTML pages: a shell per page; the data comes from the JSON API and the live stream."""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, redirect, render_template, url_for
from sqlalchemy import text
from werkzeug.wrappers import Response

from . import bins
from .api import bin_dict
from .extensions import db

bp = Blueprint("views", __name__)


@bp.get("/")
def index() -> str:
    """Show the home page with its one action: create a bin."""
    return render_template("index.html")


@bp.post("/bins")
def create_bin() -> Response:
    """Create a bin and go to its page."""
    bin_ = bins.create()
    return redirect(url_for("views.show_bin", bin_id=bin_.id), code=303)


@bp.get("/bins/<bin_id>")
def show_bin(bin_id: str) -> str:
    """Show a bin's page: capture URL, live list, detail pane."""
    bin_ = bins.get(bin_id)
    if bin_ is None:
        abort(404)
    return render_template("bin.html", bin=bin_dict(bin_))


@bp.get("/healthz")
def health() -> Response:
    """Answer 200 when the app can reach its database."""
    db.session.execute(text("SELECT 1"))
    return jsonify(ok=True)
