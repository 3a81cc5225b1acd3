"""One request as it arrived at a capture URL, as plain data. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Snapshot:
    """Everything stored of a request, taken before anything parses it (app/ingest/snapshot.py)."""

    method: str
    path: str
    query_string: str
    headers: list[list[str]]
    content_type: str | None
    body: bytes
    remote_addr: str | None
    url: str
    http_version: str
    received_at: datetime
