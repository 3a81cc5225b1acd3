"""Content-Security-Policy violation reports: accept what browsers send, log one line per report.

Browsers post reports in two shapes: ``application/csp-report`` (one ``{"csp-report": {...}}``,
the ``report-uri`` directive) and ``application/reports+json`` (a list of ``{"type":
"csp-violation", "body": {...}}``, the Reporting API's ``report-to``). Anyone can post here, so
the body is bounded, never trusted, and everything logged from it is escaped.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, Response, request

from app.ingest.environ import abandon
from app.web.limits import limited

bp = Blueprint("csp_reports", __name__)
log = logging.getLogger("hookscope.csp")

PATH = "/csp-report"
# The group name report-to uses; the Reporting-Endpoints header maps it to PATH.
GROUP = "csp"
MAX_BYTES = 16 * 1024
# A Reporting API batch may hold many reports; log this many and count the rest.
MAX_LOGGED = 10
FIELD_LIMIT = 200
TYPES = ("application/csp-report", "application/reports+json", "application/json")
# (name in the log line, key in a csp-report body, key in a Reporting API body)
FIELDS = (
    ("directive", "effective-directive", "effectiveDirective"),
    ("blocked", "blocked-uri", "blockedURL"),
    ("document", "document-uri", "documentURL"),
    ("source", "source-file", "sourceFile"),
    ("line", "line-number", "lineNumber"),
    ("column", "column-number", "columnNumber"),
    ("sample", "script-sample", "sample"),
    ("disposition", "disposition", "disposition"),
)


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def token(value: Any, limit: int = FIELD_LIMIT) -> str:
    """Render a value a sender controls as one log token: escaped, no spaces, bounded."""
    if value is None or value == "":
        return "-"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=True)
    escaped = text.encode("unicode_escape").decode("ascii").replace(" ", "\\x20")
    return escaped if len(escaped) <= limit else escaped[:limit] + "..."


def violations(data: Any) -> list[dict[str, Any]]:
    """Pick the violation bodies out of either report shape, as (log name -> value) mappings."""
    if isinstance(data, dict) and isinstance(data.get("csp-report"), dict):
        body = data["csp-report"]
        # Older browsers name only violated-directive.
        body.setdefault("effective-directive", body.get("violated-directive"))
        return [{name: body.get(key) for name, key, _ in FIELDS}]
    if isinstance(data, list):
        return [
            {name: item["body"].get(key) for name, _, key in FIELDS}
            for item in data
            if isinstance(item, dict)
            and item.get("type") == "csp-violation"
            and isinstance(item.get("body"), dict)
        ]
    raise Refused(400, 'expected {"csp-report": {...}} or a list of Reporting API reports')


def _read_body() -> bytes:
    media_type = (request.mimetype or "").lower()
    if media_type not in TYPES:
        raise Refused(415, f"send CSP reports as {' or '.join(TYPES[:2])}")
    declared = request.content_length
    body = b"" if declared == 0 else request.stream.read(MAX_BYTES + 1)
    if (declared or 0) > MAX_BYTES or len(body) > MAX_BYTES:
        # Do not drain the rest: the connection closes after this answer.
        abandon(request.environ)
        raise Refused(413, f"CSP reports are accepted up to {MAX_BYTES} bytes")
    return body


@bp.post(PATH)
@limited("HOOKSCOPE_RATE_LIMIT_CSP_REPORTS")
def receive() -> Response:
    """Log each violation in a report body as one line; answer 204."""
    try:
        try:
            data = json.loads(_read_body())
        except (ValueError, RecursionError):
            raise Refused(400, "the report is not JSON") from None
        reports = violations(data)
    except Refused as refused:
        return Response(str(refused) + "\n", refused.status, mimetype="text/plain")
    for report in reports[:MAX_LOGGED]:
        log.warning(
            "csp-report %s", " ".join(f"{name}={token(report[name])}" for name, _, _ in FIELDS)
        )
    if len(reports) > MAX_LOGGED:
        log.warning("csp-report not-logged=%d", len(reports) - MAX_LOGGED)
    return Response(status=204)
