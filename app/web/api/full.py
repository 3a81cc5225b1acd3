"""API route for a relay: a bin's captures in full after a sequence number, oldest first."""

from __future__ import annotations

import base64

from flask import Response, jsonify

from app.store import full
from app.web.api import bp
from app.web.api.params import int_arg, readable_or_404

FULL_LIMIT_DEFAULT = 100
FULL_LIMIT_MAX = 500
# Body bytes one answer carries at most (a larger single body still comes, alone): base64 makes
# the JSON a third larger, so an answer stays near 11 MiB whatever the bin holds.
FULL_MAX_BYTES = 8 * 1024 * 1024


@bp.get("/bins/<bin_id>/requests/full")
def list_full(bin_id: str) -> Response:
    """Give the captures after ``after``, oldest first, each with its headers and exact body.

    One call carries what a relay needs to send them on (``hookscope forward``): the summary,
    ``headers`` as ``[[name, value], ...]`` in order, and ``body_base64``. ``more`` says that
    further captures were left for the next call (pass the last ``seq`` back as ``after``);
    ``last_seq`` is the bin's newest sequence number.
    """
    bin_ = readable_or_404(bin_id)
    after = int_arg("after", 0) or 0
    limit = int_arg("limit", FULL_LIMIT_DEFAULT, low=1, high=FULL_LIMIT_MAX) or FULL_LIMIT_DEFAULT
    page = full.after(bin_.id, after, limit, FULL_MAX_BYTES)
    newest = page.requests[-1].summary["seq"] if page.requests else 0
    return jsonify(
        {
            "requests": [
                {
                    **capture.summary,
                    "headers": capture.headers,
                    "body_base64": base64.b64encode(capture.body).decode("ascii"),
                }
                for capture in page.requests
            ],
            "more": page.more,
            "last_seq": max(bin_.last_seq, newest),
        }
    )
