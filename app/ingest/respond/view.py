"""What the answer may look at in a request: plain data, parsed lazily and at most once."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl

from .limits import MAX_JSON_BODY

# Returned for a path that leads nowhere, so a JSON null can still be told apart.
MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()
_UNPARSED: Any = object()


class SnapshotLike(Protocol):
    method: str
    path: str
    query_string: str
    headers: list[list[str]]
    body: bytes
    content_type: str | None
    received_at: datetime


class RequestView:
    """One captured request as the responder sees it.

    ``path`` is below the bin (``""`` for the bin's own URL), as sent; ``headers`` are the
    ``[name, value]`` pairs in the order received; ``seq`` is None when the answer is chosen
    before the capture is stored.
    """

    __slots__ = (
        "method",
        "path",
        "query_string",
        "headers",
        "body",
        "content_type",
        "seq",
        "received_at",
        "_query",
        "_json",
    )

    def __init__(
        self,
        method: str,
        path: str = "",
        query_string: str = "",
        headers: Sequence[Sequence[str]] = (),
        body: bytes | bytearray = b"",
        content_type: str | None = None,
        seq: int | None = None,
        received_at: datetime | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.query_string = query_string
        self.headers = headers
        self.body = body
        self.content_type = content_type
        self.seq = seq
        self.received_at = received_at
        self._query: list[tuple[str, str]] | None = None
        self._json: Any = _UNPARSED

    @classmethod
    def of(cls, snapshot: SnapshotLike, seq: int | None = None) -> RequestView:
        """View a capture snapshot (app/domain/capture.py's ``Snapshot``)."""
        return cls(
            snapshot.method,
            snapshot.path,
            snapshot.query_string,
            snapshot.headers,
            snapshot.body,
            snapshot.content_type,
            seq,
            snapshot.received_at,
        )

    def query(self) -> list[tuple[str, str]]:
        """Return the query's pairs, decoded, in order (parsed on first use)."""
        if self._query is None:
            self._query = parse_qsl(self.query_string, keep_blank_values=True)
        return self._query

    def query_values(self, name: str) -> list[str]:
        """Return every value of a query parameter, in order."""
        return [value for key, value in self.query() if key == name]

    def header_values(self, name: str) -> list[str]:
        """Return every value of a header (name matched case-insensitively), in order."""
        # A scan, not an index: rules look up one or two names, and comparing lengths first
        # skips almost every header without lower-casing it.
        wanted = name.lower()
        size = len(wanted)
        return [v for k, v in self.headers if len(k) == size and k.lower() == wanted]

    def header(self, name: str) -> str | None:
        """Return the first value of a header, or None."""
        values = self.header_values(name)
        return values[0] if values else None

    @property
    def json(self) -> Any:
        """The body parsed as JSON, or MISSING when it is not JSON or is over MAX_JSON_BODY."""
        if self._json is _UNPARSED:
            self._json = parse_json(self.body)
        return self._json

    def received_at_text(self) -> str:
        """Format the receive time as ISO 8601 UTC with microseconds and a ``Z``."""
        if self.received_at is None:
            return ""
        moment = self.received_at.astimezone(UTC).replace(tzinfo=None)
        return moment.isoformat(timespec="microseconds") + "Z"


def parse_json(body: bytes | bytearray) -> Any:
    """Parse a body as JSON within MAX_JSON_BODY; MISSING when it is not JSON or too big."""
    if not body or len(body) > MAX_JSON_BODY:
        return MISSING
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, nested too deep, huge number
        return MISSING
