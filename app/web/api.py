"""JSON API under ``/api/v1``, authorised by the bin's read key (Bearer token or cookie)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app import live
from app.domain import bins
from app.domain.models import Bin, CapturedRequest
from app.extensions import csrf
from app.inspect import bodies
from app.store import search
from app.web import access, openapi
from app.web.links import bin_links, share_url

bp = Blueprint("api", __name__, url_prefix="/api/v1")
MAX_SEQ = bins.MAX_SEQ
SEQ = "<int:seq>"  # larger than MAX_SEQ: bins.find answers None
# The readable docs live beside the prefix, at /api/docs.
bp.record_once(lambda s: s.app.add_url_rule("/api/docs", "api_docs", openapi.docs_page))


class ApiError(Exception):
    """An error the client can act on: a machine code, a human message, a status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@bp.errorhandler(ApiError)
def _api_error(err: ApiError) -> tuple[Response, int]:
    return jsonify(error=err.code, message=err.message), err.status


@bp.errorhandler(bins.Invalid)
def _invalid(err: bins.Invalid) -> tuple[Response, int]:
    return jsonify(error=err.code, message=str(err)), 400


@bp.errorhandler(CSRFError)
def _csrf_error(err: CSRFError) -> tuple[Response, int]:
    message = (
        f"{err.description} A change made with the browser's cookie needs the X-CSRFToken header"
        " from the page's csrf-token meta tag; scripts use Authorization: Bearer <read key>."
    )
    return jsonify(error="csrf_failed", message=message), 400


@bp.errorhandler(HTTPException)
def _http_error(err: HTTPException) -> tuple[Response, int]:
    code = (err.name or "error").lower().replace(" ", "_")
    return jsonify(error=code, message=err.description), err.code or 500


@bp.app_errorhandler(404)
@bp.app_errorhandler(405)
def _routing_error(err: HTTPException) -> HTTPException | tuple[Response, int]:
    """Answer JSON for unknown API URLs too; other pages keep Flask's HTML error."""
    if request.path.startswith(f"{bp.url_prefix}/"):
        return _http_error(err)
    return err


@bp.before_request
def _csrf_for_cookie_callers() -> None:
    """Ask for the CSRF token only where a browser's cookie is the credential.

    A Bearer key cannot be sent by another site, and a caller without the cookie holds nothing
    a forged request could use; a change riding on the cookie must carry X-CSRFToken.
    """
    if request.method in ("GET", "HEAD", "OPTIONS") or access.bearer_token() is not None:
        return
    if current_app.config["SESSION_COOKIE_NAME"] in request.cookies:
        csrf.protect()


def readable_or_404(bin_id: str) -> Bin:
    """Return the bin if the caller holds its key; a missing bin and a wrong key look alike."""
    bin_ = access.readable(bin_id)
    if bin_ is None:
        raise ApiError(
            404, "bin_not_found", "no such bin, or the read key (Bearer token) does not open it"
        )
    return bin_


def _int_arg(name: str, default: int | None, low: int = 0, high: int = MAX_SEQ) -> int | None:
    """Read a whole-number query parameter within [low, high], or explain what is wrong."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not raw.isascii() or not low <= int(raw) <= high:
        message = f"{name} must be a whole number from {low} to {high}, got {raw!r}"
        raise ApiError(400, "bad_parameter", message)
    return int(raw)


def _bool_arg(name: str) -> bool:
    raw = request.args.get(name, "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise ApiError(400, "bad_parameter", f"{name} must be true or false, got {raw!r}")
    return raw in ("true", "1")


def _time_arg(name: str) -> datetime | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.upper().replace("Z", "+00:00"))
        # Times near the ends of the calendar cannot be moved to UTC; say so rather than fail.
        moment.astimezone(UTC)
    except (ValueError, OverflowError):
        moment = None
    if moment is None or moment.tzinfo is None:
        message = f"{name} must be an ISO 8601 time with a zone, like 2026-11-23T12:00:00Z"
        raise ApiError(400, "bad_parameter", message)
    return moment


def _json_object() -> dict[str, Any]:
    data = request.get_json(silent=True) if request.content_length else {}
    if not isinstance(data, dict):
        raise ApiError(400, "bad_json", "send a JSON object with Content-Type: application/json")
    return data


def bin_dict(bin_: Bin, read_key: str | None = None) -> dict[str, Any]:
    """Serialise a bin for someone allowed to read it, with the links they need."""
    body: dict[str, Any] = {**bin_.to_dict(), **bin_links(bin_.id)}
    if read_key:
        body["read_key"] = read_key
        body["share_url"] = share_url(bin_.id, read_key)
    return body


@bp.post("/bins")
def create_bin() -> tuple[Response, int, dict[str, str]]:
    """Create a bin; the answer carries its read key, which this browser also keeps."""
    created = bins.create(settings=_json_object())
    access.remember(created.bin.id, created.read_key)
    location = url_for("api.get_bin", bin_id=created.bin.id)
    return jsonify(bin_dict(created.bin, created.read_key)), 201, {"Location": location}


@bp.get("/bins")
def list_bins() -> Response:
    """List the bins this browser holds keys for (its "your bins")."""
    return jsonify(bins=[bin_dict(b) for b in access.your_bins()])


@bp.get("/bins/<bin_id>")
def get_bin(bin_id: str) -> Response:
    """Describe a bin."""
    bin_ = readable_or_404(bin_id)
    bins.touch(bin_)
    return jsonify(bin_dict(bin_))


@bp.patch("/bins/<bin_id>")
def update_bin(bin_id: str) -> Response:
    """Rename, describe, or change a bin's limit, expiry or ingest protection."""
    bin_ = bins.update_bin(readable_or_404(bin_id), _json_object())
    body = bin_dict(bin_)
    live.publish_bin(bin_.to_dict())
    return jsonify(body)


@bp.delete("/bins/<bin_id>")
def delete_bin(bin_id: str) -> tuple[str, int]:
    """Delete a bin and everything it holds."""
    bin_ = readable_or_404(bin_id)
    bins.delete_bin(bin_.id)
    access.forget(bin_.id)
    live.publish_bin_deleted(bin_.id)
    return "", 204


@bp.post("/bins/<bin_id>/session")
def open_session(bin_id: str) -> tuple[str, int]:
    """Remember a bin's key in this browser's cookie (how a share link grants access)."""
    bin_ = readable_or_404(bin_id)
    token = access.bearer_token()
    if token is None:
        raise ApiError(400, "key_required", "send the read key as Authorization: Bearer <key>")
    access.remember(bin_.id, token)
    return "", 204


@bp.get("/bins/<bin_id>/requests")
def list_requests(bin_id: str) -> Response:
    """List captured requests newest first; pass ``next_before`` back as ``before``.

    With ``q``, only the requests that match the search (see app/search/), in the same shape.
    On PostgreSQL a search bounds the work of one call: when it stops before the page is full,
    the answer adds ``searched_down_to`` (every request from that seq up has been searched), the
    page may hold fewer than ``limit`` matches or none, and ``next_before`` (never null then)
    goes on from there. Follow ``next_before`` until it is null to see every match.
    """
    bin_ = readable_or_404(bin_id)
    query = request.args.get("q", "")
    terms = search.parse(query) if query.strip() else None
    filters = {
        "limit": _int_arg("limit", bins.PAGE_LIMIT_DEFAULT, low=1, high=bins.PAGE_LIMIT_MAX),
        "before": _int_arg("before", None),
        "method": request.args.get("method") or None,
        "since": _time_arg("since"),
        "until": _time_arg("until"),
    }
    if terms is None:
        page = bins.page(bin_.id, **filters)
    else:
        page = search.page(bin_.id, terms, **filters)
    body: dict[str, Any] = {"requests": page.requests, "next_before": page.next_before}
    if page.searched_down_to is not None:
        body["searched_down_to"] = page.searched_down_to
    return jsonify(body)


@bp.delete("/bins/<bin_id>/requests")
def clear_requests(bin_id: str) -> Response:
    """Delete every request of the bin except pinned ones (``?include_pinned=true`` for all)."""
    bin_ = readable_or_404(bin_id)
    deleted = bins.clear(bin_.id, include_pinned=_bool_arg("include_pinned"))
    live.publish_cleared(bin_.id)
    return jsonify(deleted=deleted)


def _captured_or_404(bin_id: str, seq: int) -> CapturedRequest:
    bin_ = readable_or_404(bin_id)
    captured = bins.find(bin_.id, seq)
    if captured is None:
        raise ApiError(404, "request_not_found", f"bin {bin_id} has no request #{seq}")
    return captured


@bp.get(f"/bins/<bin_id>/requests/{SEQ}")
def get_request(bin_id: str, seq: int) -> Response:
    """Give one request's detail: headers in order, parsed query and form, body description."""
    captured = _captured_or_404(bin_id, seq)
    payload = bins.payload_of(captured)
    form, files = bodies.form_of(captured.content_type, payload.body)
    return jsonify(
        {
            **captured.to_summary(),
            "url": payload.url,
            "http_version": payload.http_version,
            "headers": payload.headers,
            "query": [[k, v] for k, v in parse_qsl(captured.query_string, keep_blank_values=True)],
            "body": bodies.describe(captured.content_type, payload.headers, payload.body),
            "form": form,
            "files": files,
            "raw_url": url_for("api.get_raw", bin_id=bin_id, seq=seq),
        }
    )


@bp.patch(f"/bins/<bin_id>/requests/{SEQ}")
def update_request(bin_id: str, seq: int) -> Response:
    """Pin a request so retention keeps it, or unpin it: ``{"pinned": true}``."""
    bin_ = readable_or_404(bin_id)
    data = _json_object()
    if set(data) != {"pinned"} or not isinstance(data["pinned"], bool):
        raise ApiError(400, "bad_json", 'send {"pinned": true} or {"pinned": false}')
    summary = bins.set_pinned(bin_.id, seq, data["pinned"])
    if summary is None:
        raise ApiError(404, "request_not_found", f"bin {bin_id} has no request #{seq}")
    live.publish_pinned(summary)
    return jsonify(summary)


@bp.delete(f"/bins/<bin_id>/requests/{SEQ}")
def delete_request(bin_id: str, seq: int) -> tuple[str, int]:
    """Delete one request."""
    bin_ = readable_or_404(bin_id)
    if not bins.delete_request(bin_.id, seq):
        raise ApiError(404, "request_not_found", f"bin {bin_id} has no request #{seq}")
    live.publish_deleted(bin_.id, [seq])
    return "", 204


@bp.get(f"/bins/<bin_id>/requests/{SEQ}/raw")
def get_raw(bin_id: str, seq: int) -> Response:
    """Return the exact body bytes as a download that no browser will render."""
    captured = _captured_or_404(bin_id, seq)
    payload = bins.payload_of(captured)
    return Response(
        payload.body,
        mimetype="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{bin_id}-{seq}.bin"',
            "Content-Security-Policy": "sandbox",
        },
    )


@bp.get("/openapi.json")
def openapi_spec() -> Response:
    """Describe this API in OpenAPI 3.1, with this server's address and limits."""
    return Response(openapi.spec_json(), mimetype="application/json")
