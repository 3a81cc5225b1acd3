"""The JSON shapes of bins and requests: one shape for the API, the live event and the page.

Plain data: the tables (app/domain/models.py) and the capture writers (app/store/batch.py) both
make their summaries here, so what a list page, a replay and a live event show cannot drift.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict


def isoformat(moment: datetime) -> str:
    """Format as ISO 8601 UTC with microseconds and a ``Z``."""
    # isoformat, not strftime: several times faster, and it runs for every capture.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


class BinDict(TypedDict):
    id: str
    name: str
    description: str
    created_at: str
    last_seq: int
    request_count: int
    max_requests: int
    max_bytes: int | None
    stored_bytes: int
    expires_at: str | None
    expires_after: int | None
    ingest_auth: str | None
    fixed: bool
    public: bool
    forward_to: list[str]


class SummaryDict(TypedDict):
    bin: str
    seq: int
    method: str
    path: str
    query_string: str
    content_type: str | None
    body_size: int
    remote_addr: str | None
    received_at: str
    status: int
    rejected: bool
    pinned: bool
    delivery_id: str | None
    # Present (true) when the list shape cut the path or query string (SUMMARY_TEXT_MAX).
    path_truncated: NotRequired[bool]
    query_string_truncated: NotRequired[bool]


# A summary carries at most this many characters of path and of query string: a request line may
# hold 64 KiB, and every list page, replay and live event repeats the summary. The detail has both
# whole.
SUMMARY_TEXT_MAX = 1024


def summary(  # noqa: PLR0913 - one argument per field
    bin_id: str,
    seq: int,
    method: str,
    path: str,
    query_string: str,
    content_type: str | None,
    body_size: int,
    remote_addr: str | None,
    received_at: str,
    status: int,
    rejected: bool,
    pinned: bool,
    delivery_id: str | None = None,
    cut: bool = True,
) -> SummaryDict:
    """A request's summary: the one shape of the list API, the live event and the page.

    ``cut`` keeps at most SUMMARY_TEXT_MAX characters of the path and query string, flagging
    what it cut; the detail view asks for them whole.
    """
    described: SummaryDict = {
        "bin": bin_id,
        "seq": seq,
        "method": method,
        "path": path,
        "query_string": query_string,
        "content_type": content_type,
        "body_size": body_size,
        "remote_addr": remote_addr,
        "received_at": received_at,
        "status": status,
        "rejected": rejected,
        "pinned": pinned,
        "delivery_id": delivery_id,
    }
    if cut and len(path) > SUMMARY_TEXT_MAX:
        described["path"] = path[:SUMMARY_TEXT_MAX]
        described["path_truncated"] = True
    if cut and len(query_string) > SUMMARY_TEXT_MAX:
        described["query_string"] = query_string[:SUMMARY_TEXT_MAX]
        described["query_string_truncated"] = True
    return described


def body_value(body: bytes, truncated: bool = False) -> dict[str, Any]:
    """A body for JSON: as text when it is UTF-8 without NUL bytes, else as base64."""
    shown: dict[str, Any] = {"size": len(body), "truncated": truncated}
    try:
        if b"\x00" in body:
            raise UnicodeDecodeError("utf-8", body, 0, 1, "NUL")
        shown["text"] = body.decode("utf-8")
    except UnicodeDecodeError:
        shown["base64"] = base64.b64encode(body).decode("ascii")
    return shown
