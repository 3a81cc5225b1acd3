"""API route on a bin's usage: what it took and refused in the last hour and day, and why."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify

from app.domain.refusals import REASONS
from app.extensions import under_gevent
from app.ingest import tally
from app.store import usage
from app.store.usage import Recent
from app.web.api import bp
from app.web.api.params import readable_or_404


@bp.get("/bins/<bin_id>/usage")
def get_usage(bin_id: str) -> Response:
    """Count what the bin stored and what it refused, by reason, with what changes each."""
    if not under_gevent():
        # No flushing greenlet outside gunicorn (tests, the CLI): add this process's counts now,
        # before this request's read transaction begins, so that it sees them.
        tally.flush(current_app._get_current_object())  # type: ignore[attr-defined]
    bin_ = readable_or_404(bin_id)
    return jsonify(usage_dict(bin_.id, usage.recent([bin_.id])[bin_.id]))


def usage_dict(bin_id: str, recent: Recent) -> dict[str, Any]:
    """The API's shape of a bin's recent usage."""
    by_reason = {}
    for reason, counts in sorted(recent["by_reason"].items()):
        known = REASONS.get(reason)
        by_reason[reason] = {
            "last_hour": counts["hour"],
            "last_day": counts["day"],
            "status": known.status if known else None,
            "setting": known.setting if known else None,
            "summary": known.summary if known else f"refused ({reason})",
            "advice": known.advice if known else "",
        }
    return {
        "bin": bin_id,
        "period_seconds": usage.PERIOD_SECONDS,
        "captured": {
            "last_hour": recent["captures_hour"],
            "last_day": recent["captures_day"],
            "bytes_last_hour": recent["bytes_hour"],
            "bytes_last_day": recent["bytes_day"],
        },
        "refused": {
            "last_hour": recent["refused_hour"],
            "last_day": recent["refused_day"],
            "by_reason": by_reason,
        },
    }
