"""What a capture is answered: one plain value, complete but for Content-Length.

The gate sends ``status_line``, ``wsgi_headers()`` plus Content-Length, and ``body`` (not for HEAD),
after waiting ``delay_ms``; or, when ``hang_up`` is set, waits ``delay_ms`` and closes the
connection without sending anything. ``to_record()`` is what is stored with the capture.
"""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypedDict

from .headers import wsgi_value

Headers = tuple[tuple[str, str], ...]

# Today's answer and its headers, unchanged: a bin with no settings costs nothing more.
DEFAULT_HEADERS: Headers = (
    ("Content-Type", "text/plain; charset=utf-8"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
)
# Every custom answer is inert in a browser on the capture origin: no scripts, no same-origin
# access, no sniffing a text body into HTML.
SAFETY_HEADERS: Headers = (
    ("Content-Security-Policy", "sandbox"),
    ("X-Content-Type-Options", "nosniff"),
)
NO_BODY_STATUSES = frozenset({204, 304})


class AnswerRecord(TypedDict):
    status: int | None
    headers: list[list[str]]
    body: str
    body_encoding: str  # "utf-8" or "base64"
    source: str
    rule: str | None
    rule_index: int | None
    handshake: str | None
    failure: str | None
    template_error: str | None
    delivery_id: str | None
    delay_ms: int
    hang_up: bool


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer to one capture, and why it was chosen.

    ``source`` is "default" (no custom response), "response" (the bin's own default response),
    "rule", "handshake" or "preflight". ``status`` is 0 when ``hang_up`` (nothing is sent).
    """

    status: int
    headers: Headers
    body: bytes
    source: str = "default"
    rule: str | None = None
    rule_index: int | None = None
    handshake: str | None = None
    delay_ms: int = 0
    hang_up: bool = False
    failure: str | None = None  # why it fails on purpose, when it does
    template_error: str | None = None
    delivery_id: str | None = None  # the per_header value a failure counted by

    @property
    def status_line(self) -> str:
        """Return ``"201 Created"`` (the code alone when it has no standard phrase)."""
        try:
            return f"{self.status} {HTTPStatus(self.status).phrase}"
        except ValueError:
            return str(self.status)

    def wsgi_headers(self) -> list[tuple[str, str]]:
        """Return the headers for start_response (text values sent as UTF-8 bytes)."""
        return [(name, wsgi_value(value)) for name, value in self.headers]

    def with_headers(self, extra: Headers) -> Answer:
        """Return this answer with more headers after its own."""
        if not extra:
            return self
        return dataclasses.replace(self, headers=self.headers + extra)

    def to_record(self) -> AnswerRecord:
        """Return what is stored with the capture (JSON-ready); the gate adds when it went out."""
        try:
            body, encoding = self.body.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            body, encoding = base64.b64encode(self.body).decode("ascii"), "base64"
        return {
            "status": None if self.hang_up else self.status,
            "headers": [[name, value] for name, value in self.headers],
            "body": body,
            "body_encoding": encoding,
            "source": self.source,
            "rule": self.rule,
            "rule_index": self.rule_index,
            "handshake": self.handshake,
            "failure": self.failure,
            "template_error": self.template_error,
            "delivery_id": self.delivery_id,
            "delay_ms": self.delay_ms,
            "hang_up": self.hang_up,
        }


def custom(
    status: int,
    body: bytes,
    content_type: str,
    headers: Headers = (),
    **why: Any,
) -> Answer:
    """Build a custom answer: the bin's headers, then its content type and the safety headers."""
    typed = () if status in NO_BODY_STATUSES else (("Content-Type", content_type),)
    return Answer(status, (*headers, *typed, *SAFETY_HEADERS), body, **why)


def hang_up(delay_ms: int, **why: Any) -> Answer:
    """Build the non-answer of a rehearsed timeout: wait, then close without a word."""
    return Answer(0, (), b"", delay_ms=delay_ms, hang_up=True, **why)


DEFAULT = Answer(200, DEFAULT_HEADERS, b"ok\n")
