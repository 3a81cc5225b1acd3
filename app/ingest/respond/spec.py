"""A bin's response settings as frozen dataclasses, and the forms they are shown and stored in.

``to_dict()`` is the API's form (what ``PATCH /api/v1/bins/<id>`` takes, minus secrets: a saved
Zoom secret shows as ``"zoom_secret_set": true``); ``to_storable()`` is what the database keeps,
secrets included (the Meta verify token only as its SHA-256). parse.py checks what comes in.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from .match import Condition

DEFAULT_CONTENT_TYPE = "text/plain; charset=utf-8"
STORABLE_VERSION = 1


class Invalid(ValueError):
    """Settings the bin cannot take; ``field`` is where (``rules[2].response.headers[0]``)."""

    def __init__(self, code: str, message: str, field: str) -> None:
        super().__init__(message)
        self.code, self.message, self.field = code, message, field

    def to_dict(self) -> dict[str, str]:
        """Return the API's error body."""
        return {"error": self.code, "message": self.message, "field": self.field}


@dataclass(frozen=True)
class Failure:
    """Fail on purpose: the ``first`` N requests (per ``per_header`` value) or ``percent``."""

    first: int | None = None
    percent: float | None = None
    per_header: str | None = None
    status: int = 503
    timeout: bool = False  # hold for delay_ms, then close the connection without answering
    delay_ms: int = 0

    def to_dict(self) -> dict[str, Any]:
        shown: dict[str, Any] = (
            {"first": self.first} if self.first is not None else {"percent": self.percent}
        )
        if self.per_header is not None:
            shown["per_header"] = self.per_header
        shown.update({"timeout": True} if self.timeout else {"status": self.status})
        shown["delay_ms"] = self.delay_ms
        return shown


@dataclass(frozen=True)
class ResponseSpec:
    """One answer a bin may give; a text body or header value may be a template."""

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    body_is_text: bool = True  # given as "body" (text, maybe a template), not "body_base64"
    content_type: str = DEFAULT_CONTENT_TYPE
    delay_ms: int = 0
    failure: Failure | None = None

    def to_dict(self) -> dict[str, Any]:
        body = (
            {"body": self.body.decode("utf-8")}
            if self.body_is_text
            else {"body_base64": base64.b64encode(self.body).decode("ascii")}
        )
        return {
            "status": self.status,
            "headers": [[name, value] for name, value in self.headers],
            **body,
            "content_type": self.content_type,
            "delay_ms": self.delay_ms,
            "failure": None if self.failure is None else self.failure.to_dict(),
        }


@dataclass(frozen=True)
class Rule:
    """When every condition holds (AND), answer ``response``; the first matching rule wins."""

    name: str
    when: tuple[Condition, ...]
    response: ResponseSpec

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "when": [condition.to_dict() for condition in self.when],
            "response": self.response.to_dict(),
        }


@dataclass(frozen=True)
class ResponseSettings:
    """Everything that decides a bin's answers. The default is today's plain ``200 ok``."""

    response: ResponseSpec | None = None
    rules: tuple[Rule, ...] = ()
    handshakes: bool = True
    meta_verify_token_sha256: str | None = field(default=None, repr=False)
    zoom_secret: str | None = field(default=None, repr=False)
    cors: bool = False
    cors_origins: tuple[str, ...] = ("*",)

    @property
    def is_default(self) -> bool:
        return self == DEFAULT_SETTINGS

    def to_dict(self) -> dict[str, Any]:
        """Return the API's form: secrets only as whether they are set."""
        return {
            "response": None if self.response is None else self.response.to_dict(),
            "rules": [rule.to_dict() for rule in self.rules],
            "handshakes": {
                "enabled": self.handshakes,
                "meta_verify_token_set": self.meta_verify_token_sha256 is not None,
                "zoom_secret_set": self.zoom_secret is not None,
            },
            "cors": {"enabled": self.cors, "origins": list(self.cors_origins)},
        }

    def to_storable(self) -> dict[str, Any]:
        """Return the JSON form the database keeps (parse.from_storable reads it back)."""
        shown = self.to_dict()
        shown["version"] = STORABLE_VERSION
        shown["handshakes"] = {
            "enabled": self.handshakes,
            "meta_verify_token_sha256": self.meta_verify_token_sha256,
            "zoom_secret": self.zoom_secret,
        }
        return shown


DEFAULT_SETTINGS = ResponseSettings()
