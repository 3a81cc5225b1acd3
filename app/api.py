"""JSON API under ``/api/v1``: the shapes the page, the tests and the CLI share."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from flask import Blueprint, Response, jsonify, request, url_for
from werkzeug.exceptions import HTTPException

from . import bins, bodies
from .links import bin_links
from .models import Bin, CapturedRequest

bp = Blueprint("api", __name__, url_prefix="/api/v1")


class ApiError(Exception):
    """An error the client can act on: a machine code, a human message, a status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@bp.errorhandler(ApiError)
def _api_error(err: ApiError) -> tuple[Response, int]:
    return jsonify(error=err.code, message=err.message), err.status


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


def _bin_or_404(bin_id: str) -> Bin:
    bin_ = bins.get(bin_id)
    if bin_ is None:
        raise ApiError(404, "bin_not_found", f"no bin with id {bin_id!r}")
    return bin_


def _int_arg(name: str, default: int | None) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(
            400, "bad_parameter", f"{name} must be a whole number, got {raw!r}"
        ) from None
    if value < 0:
        raise ApiError(400, "bad_parameter", f"{name} must not be negative")
    return value


def bin_dict(bin_: Bin) -> dict[str, Any]:
    return {**bin_.to_dict(), **bin_links(bin_.id)}


@bp.post("/bins")
def create_bin() -> tuple[Response, int, dict[str, str]]:
    """Create a bin."""
    data = request.get_json(silent=True) if request.content_length else None
    name = data.get("name", "") if isinstance(data, dict) else ""
    if not isinstance(name, str) or len(name) > 200:
        raise ApiError(400, "bad_name", "name must be text of at most 200 characters")
    bin_ = bins.create(name)
    body = bin_dict(bin_)
    return jsonify(body), 201, {"Location": url_for("api.get_bin", bin_id=bin_.id)}


@bp.get("/bins/<bin_id>")
def get_bin(bin_id: str) -> Response:
    """Describe a bin."""
    return jsonify(bin_dict(_bin_or_404(bin_id)))


@bp.get("/bins/<bin_id>/requests")
def list_requests(bin_id: str) -> Response:
    """List captured requests newest first; pass ``next_before`` back as ``before``."""
    bin_ = _bin_or_404(bin_id)
    limit = _int_arg("limit", bins.PAGE_LIMIT_DEFAULT) or bins.PAGE_LIMIT_DEFAULT
    if limit > bins.PAGE_LIMIT_MAX:
        raise ApiError(400, "bad_parameter", f"limit must be at most {bins.PAGE_LIMIT_MAX}")
    page = bins.page(bin_.id, limit=limit, before=_int_arg("before", None))
    return jsonify(requests=page.requests, next_before=page.next_before)


def _captured_or_404(bin_id: str, seq: int) -> CapturedRequest:
    bin_ = _bin_or_404(bin_id)
    captured = bins.find(bin_.id, seq)
    if captured is None:
        raise ApiError(404, "request_not_found", f"bin {bin_id} has no request #{seq}")
    return captured


@bp.get("/bins/<bin_id>/requests/<int:seq>")
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


@bp.get("/bins/<bin_id>/requests/<int:seq>/raw")
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
