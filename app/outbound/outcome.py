"""An outbound call's result as the columns of its attempt row. Pure."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from app.domain.forwarding import KEPT_RESPONSE_BYTES

from .client import Result


def columns(result: Result) -> dict[str, Any]:
    """What an attempt keeps of a result: the answer (body bounded) or the error."""
    body = result.body[:KEPT_RESPONSE_BYTES]
    message = result.message
    if len(result.body) > KEPT_RESPONSE_BYTES and not result.truncated:
        message = f"the response body is kept up to {KEPT_RESPONSE_BYTES} bytes"
    return {
        "url": result.url,
        "address": result.address,
        "status": result.status,
        "reason": result.reason,
        "error": result.error,
        "message": message,
        "response_headers": result.headers if result.status is not None else None,
        "response_body": body if result.status is not None else None,
        "response_truncated": result.truncated or len(result.body) > KEPT_RESPONSE_BYTES,
        "timings": asdict(result.timings),
    }
