"""The operator's page, /admin: every bin, biggest first, and deleting any of them.

Sorted by bytes stored or by traffic (``?sort=``); the paging links keep the sort.

The browser proves it holds HOOKSCOPE_ADMIN_TOKEN once, through a form (a POST, so the token
never appears in a URL, a log or a Referer); the session keeps its digest from then on
(app/web/operators.py). The page is rendered here, without scripts but for a confirmation
before deleting; what users named their bins is only ever escaped text.
"""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app.domain.refusals import REASONS
from app.store.admin import SORTS, Traffic
from app.store.budget import figures_of
from app.web import operators
from app.web.api.admin import listing, remove, sort_arg
from app.web.errors import Refused

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("")
def show() -> str | tuple[str, int]:
    """Show every bin to the operator, or ask for the admin token."""
    if not operators.holds(operators.ADMIN):
        return _sign_in_page()
    who = operators.operator()
    try:
        rows, cursor = listing()
    except Refused as refused:
        return _sign_in_page(refused.message, signed_in=True), refused.status
    operators.log_action(who, "list", after=request.args.get("after") or "-")
    ceiling = current_app.config["HOOKSCOPE_BIN_MAX_BYTES"]
    return render_template(
        "admin.html",
        signed_in=True,
        operator=who,
        bins=[row.to_dict(ceiling) for row in rows],
        next_cursor=cursor,
        first_page=not request.args.get("after"),
        sort=sort_arg(),
        sorts=list(SORTS),
        storage=figures_of(current_app),
        refusal_title=refusal_title,
    )


def refusal_title(traffic: Traffic) -> str:
    """Why a bin's captures were refused in the last day, the most common reason first."""
    reasons = sorted(
        traffic["refusals_by_reason"].items(), key=lambda item: (-item[1]["day"], item[0])
    )
    said = []
    for reason, counts in reasons:
        if counts["day"]:
            setting = getattr(REASONS.get(reason), "setting", None)
            said.append(f"{counts['day']:,} {reason}" + (f" ({setting})" if setting else ""))
    return "Last day: " + ", ".join(said) if said else "No refusals in the last day"


def _sign_in_page(refusal: str | None = None, signed_in: bool = False) -> str:
    return render_template(
        "admin.html",
        signed_in=signed_in,
        disabled=not current_app.config["HOOKSCOPE_ADMIN_TOKEN"],
        refusal=refusal,
    )


@bp.post("/session")
def sign_in() -> Response | tuple[str, int]:
    """Check the admin token typed into the page; keep it in this browser's session."""
    if not operators.grant(operators.ADMIN, request.form.get("admin_token", "")):
        return _sign_in_page(operators.ADMIN_REFUSAL), 401
    operators.log_action(operators.operator(), "sign-in")
    return redirect(url_for("admin.show"), code=303)


@bp.post("/signout")
def sign_out() -> Response:
    """Forget the admin token in this browser."""
    operators.sign_out(operators.ADMIN)
    return redirect(url_for("admin.show"), code=303)


@bp.post("/bins/<bin_id>/delete")
def delete_bin(bin_id: str) -> Response:
    """Delete any bin, then show the listing again."""
    who = operators.operator()
    remove(who, bin_id)
    return redirect(url_for("admin.show"), code=303)
