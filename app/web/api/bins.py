"""API routes on bins: create, list yours, describe, change, delete, remember in this browser."""

from __future__ import annotations

from flask import Response, current_app, jsonify, request, url_for

from app import live
from app.outbound import bounds, targets
from app.store import bins
from app.web import access
from app.web.api import bp
from app.web.api.params import json_object, readable_or_404
from app.web.errors import Refused
from app.web.limits import limited
from app.web.links import bin_dict


@bp.post("/bins")
@limited("HOOKSCOPE_RATE_LIMIT_CREATE", scope="create-bin")
def create_bin() -> tuple[Response, int, dict[str, str]]:
    """Create a bin; the answer carries its read key, which this browser also keeps."""
    settings = json_object()
    _check_targets(settings)
    created = bins.create(settings=settings)
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
    bin_ = readable_or_404(bin_id)
    changes = json_object()
    _check_targets(changes)
    bin_ = bins.update_bin(bin_, changes)
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
        raise Refused(400, "key_required", "send the read key as Authorization: Bearer <key>")
    access.remember(bin_.id, token)
    return "", 204


# 422 for a target the guard refuses, as for a replay to it; 400 for the rest.
_TARGET_STATUS = {"target_forbidden": 422, "forward_loop": 422}


def _check_targets(changes: dict) -> None:
    """Refuse auto-forward targets the guard or the loop guard would refuse at send time."""
    urls = changes.get("forward_to")
    if not isinstance(urls, list):
        return  # absent or null; any other shape is the bin rules' to refuse
    config = current_app.config
    own = bounds.own_urls(config, [request.host_url])
    try:
        targets.check([u for u in urls if isinstance(u, str)], bounds.allow_of(config), own)
    except targets.Refusal as refusal:
        raise Refused(
            _TARGET_STATUS.get(refusal.code, 400), refusal.code, refusal.message
        ) from None
