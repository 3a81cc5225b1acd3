"""HTML pages: a shell per page; the data comes from the JSON API and the live stream."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app.domain import budgets
from app.store import bins
from app.web import access, operators
from app.web.errors import Refused
from app.web.limits import limited
from app.web.links import bin_dict

bp = Blueprint("pages", __name__)
bp.add_app_template_filter(budgets.human, "bytes")


@bp.get("/")
def index() -> str:
    """Show the home page: create a bin, and the bins this browser holds keys for."""
    return _home()


def _home(refusal: str | None = None) -> str:
    return render_template(
        "index.html",
        your_bins=[bin_dict(b) for b in access.your_bins()],
        # Where creating needs the operator's create token, the page asks for it once.
        ask_token=not operators.may_create() and bool(current_app.config["HOOKSCOPE_CREATE_TOKEN"]),
        refusal=refusal,
    )


@bp.post("/bins")
@limited("HOOKSCOPE_RATE_LIMIT_CREATE", scope="create-bin")
def create_bin() -> Response | tuple[str, int]:
    """Create a bin, give this browser its key, and go to its page.

    A create token typed into the home page is checked here and kept in the session.
    """
    presented = request.form.get("create_token", "")
    if presented and not operators.grant(operators.CREATE, presented):
        wrong = "that is not this server's create token (HOOKSCOPE_CREATE_TOKEN); ask its operator"
        return _home(wrong), 401
    try:
        created_by = operators.creator()
    except Refused as refused:
        return _home(refused.message), refused.status
    created = bins.create(created_by=created_by)
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
