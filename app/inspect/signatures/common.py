"""What the signature schemes share."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence


class BadSecret(ValueError):
    """The secret cannot be used with this scheme; the message says why."""


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def header(headers: Sequence[Sequence[str]], name: str) -> str | None:
    """The first value of a header (any case), or None."""
    return next((str(v) for n, v in headers if str(n).lower() == name.lower()), None)
