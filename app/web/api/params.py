"""Reading an API call: its bin (when the caller may read it), query parameters, JSON body."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from flask import request

from app.domain import bins as rules
from app.domain.bins import MAX_SEQ
from app.domain.models import Bin, CapturedRequest
from app.store import requests as stored
from app.web import access
from app.web.errors import Refused


def readable_or_404(bin_id: str) -> Bin:
    """Return the bin if the caller holds its key; a missing bin and a wrong key look alike."""
    bin_ = access.readable(bin_id)
    if bin_ is None:
        raise Refused(
            404, "bin_not_found", "no such bin, or the read key (Bearer token) does not open it"
        )
    return bin_


def changeable_or_refused(bin_id: str, change: str) -> Bin:
    """Return the bin if the caller holds its key and its kind allows ``change`` (403 if not)."""
    return changeable(readable_or_404(bin_id), change)


def changeable(bin_: Bin, change: str, fields: Collection[str] = ()) -> Bin:
    """Return the bin if its kind (public, fixed) allows ``change`` to ``fields``; else 403."""
    refused = rules.refused_change(
        bin_.id, fixed=bin_.fixed, public=bin_.public, change=change, fields=fields
    )
    if refused is not None:
        raise refused
    return bin_


def captured_or_404(bin_id: str, seq: int) -> CapturedRequest:
    bin_ = readable_or_404(bin_id)
    captured = stored.find(bin_.id, seq)
    if captured is None:
        raise request_not_found(bin_id, seq)
    return captured


def request_not_found(bin_id: str, seq: int) -> Refused:
    return Refused(404, "request_not_found", f"bin {bin_id} has no request #{seq}")


def int_arg(name: str, default: int | None, low: int = 0, high: int = MAX_SEQ) -> int | None:
    """Read a whole-number query parameter within [low, high], or explain what is wrong."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not raw.isascii() or not low <= int(raw) <= high:
        message = f"{name} must be a whole number from {low} to {high}, got {raw!r}"
        raise Refused(400, "bad_parameter", message)
    return int(raw)


def bool_arg(name: str) -> bool:
    raw = request.args.get(name, "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise Refused(400, "bad_parameter", f"{name} must be true or false, got {raw!r}")
    return raw in ("true", "1")


def time_arg(name: str) -> datetime | None:
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
        raise Refused(400, "bad_parameter", message)
    return moment


def json_object() -> dict[str, Any]:
    data = request.get_json(silent=True) if request.content_length else {}
    if not isinstance(data, dict):
        raise Refused(400, "bad_json", "send a JSON object with Content-Type: application/json")
    return data
