"""API routes on a bin's captured requests: list and search, detail, raw body, pin, delete."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from flask import Response, jsonify, request, url_for

from app import live
from app.domain.bins import PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX
from app.inspect import bodies
from app.store import requests as stored
from app.store import search
from app.web import responses
from app.web.api import bp
from app.web.api.params import (
    bool_arg,
    captured_or_404,
    changeable_or_refused,
    int_arg,
    json_object,
    readable_or_404,
    request_not_found,
    time_arg,
)
from app.web.errors import Refused

SEQ = "<int:seq>"  # larger than MAX_SEQ: stored.find answers None


@bp.get("/bins/<bin_id>/requests")
def list_requests(bin_id: str) -> Response:
    """List captured requests newest first; pass ``next_before`` back as ``before``.

    With ``q``, only the requests that match the search (see app/store/search/), in the same
    shape. On PostgreSQL a search bounds the work of one call: when it stops before the page is
    full, the answer adds ``searched_down_to`` (every request from that seq up has been
    searched), the page may hold fewer than ``limit`` matches or none, and ``next_before``
    (never null then) goes on from there. Follow ``next_before`` until it is null to see every
    match.
    """
    bin_ = readable_or_404(bin_id)
    query = request.args.get("q", "")
    terms = search.parse(query) if query.strip() else None
    delivery = request.args.get("delivery") or None
    if delivery is not None and terms is not None:
        message = "delivery lists one delivery's attempts; it does not combine with q"
        raise Refused(400, "bad_parameter", message)
    filters = {
        "limit": int_arg("limit", PAGE_LIMIT_DEFAULT, low=1, high=PAGE_LIMIT_MAX),
        "before": int_arg("before", None),
        "method": request.args.get("method") or None,
        "since": time_arg("since"),
        "until": time_arg("until"),
    }
    if terms is None:
        page = stored.page(bin_.id, delivery=delivery, **filters)
    else:
        page = search.page(bin_.id, terms, **filters)
    body: dict[str, Any] = {"requests": page.requests, "next_before": page.next_before}
    if page.searched_down_to is not None:
        body["searched_down_to"] = page.searched_down_to
    return jsonify(body)


@bp.delete("/bins/<bin_id>/requests")
def clear_requests(bin_id: str) -> Response:
    """Delete every request of the bin except pinned ones (``?include_pinned=true`` for all)."""
    bin_ = changeable_or_refused(bin_id, "clear")
    deleted = stored.clear(bin_.id, include_pinned=bool_arg("include_pinned"))
    live.publish_cleared(bin_.id)
    return jsonify(deleted=deleted)


@bp.get(f"/bins/<bin_id>/requests/{SEQ}")
def get_request(bin_id: str, seq: int) -> Response:
    """Give one request's detail: headers in order, parsed query and form, body description."""
    captured = captured_or_404(bin_id, seq)
    payload = stored.payload_of(captured)
    form, files = bodies.form_of(captured.content_type, payload.body)
    return jsonify(
        {
            **captured.to_summary(cut=False),  # the whole path and query string
            "url": payload.url,
            "http_version": payload.http_version,
            "headers": payload.headers,
            "query": [[k, v] for k, v in parse_qsl(captured.query_string, keep_blank_values=True)],
            "body": bodies.describe(captured.content_type, payload.headers, payload.body),
            "form": form,
            "files": files,
            "raw_url": url_for("api.get_raw", bin_id=bin_id, seq=seq),
            "attempts_url": url_for("api.list_attempts", bin_id=bin_id, seq=seq),
            "copy_as_url": url_for("api.copy_as", bin_id=bin_id, seq=seq),
            "answer": responses.answered(captured, stored.answer_of(captured)),
        }
    )


@bp.patch(f"/bins/<bin_id>/requests/{SEQ}")
def update_request(bin_id: str, seq: int) -> Response:
    """Pin a request so retention keeps it, or unpin it: ``{"pinned": true}``."""
    bin_ = changeable_or_refused(bin_id, "pin")
    data = json_object()
    if set(data) != {"pinned"} or not isinstance(data["pinned"], bool):
        raise Refused(400, "bad_json", 'send {"pinned": true} or {"pinned": false}')
    summary = stored.set_pinned(bin_.id, seq, data["pinned"])
    if summary is None:
        raise request_not_found(bin_id, seq)
    live.publish_pinned(summary)
    return jsonify(summary)


@bp.delete(f"/bins/<bin_id>/requests/{SEQ}")
def delete_request(bin_id: str, seq: int) -> tuple[str, int]:
    """Delete one request."""
    bin_ = changeable_or_refused(bin_id, "delete_request")
    if not stored.delete_request(bin_.id, seq):
        raise request_not_found(bin_id, seq)
    live.publish_deleted(bin_.id, [seq])
    return "", 204


@bp.get(f"/bins/<bin_id>/requests/{SEQ}/raw")
def get_raw(bin_id: str, seq: int) -> Response:
    """Return the exact body bytes as a download that no browser will render."""
    captured = captured_or_404(bin_id, seq)
    payload = stored.payload_of(captured)
    return Response(
        payload.body,
        mimetype="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{bin_id}-{seq}.bin"',
            "Content-Security-Policy": "sandbox",
        },
    )
