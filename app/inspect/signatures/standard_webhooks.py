"""Standard Webhooks (https://www.standardwebhooks.com, used by Svix, Resend, Clerk...).

``webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`` with the secret's
bytes as key: a ``whsec_`` prefix, then base64. The message id is kept from the capture (a
receiver may use it to drop duplicates); a capture without one gets a new one.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Sequence

from .common import BadSecret, header, hmac_sha256

NAME = "standard_webhooks"
TITLE = "Standard Webhooks"
HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
PREFIX = "whsec_"


def key_of(secret: str) -> bytes:
    """Decode a ``whsec_...`` secret into the HMAC key."""
    try:
        return base64.b64decode(secret.removeprefix(PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise BadSecret(
            "a Standard Webhooks secret is whsec_ followed by base64 (as the sender shows it)"
        ) from None


def sign(
    secret: str, body: bytes, headers: Sequence[Sequence[str]], now: int
) -> list[tuple[str, str]]:
    """Sign ``body`` at ``now`` as a Standard Webhooks sender does."""
    key = key_of(secret)
    message_id = header(headers, "webhook-id") or "msg_" + secrets.token_hex(12)
    signed = f"{message_id}.{now}.".encode() + body
    signature = base64.b64encode(hmac_sha256(key, signed)).decode()
    return [
        ("webhook-id", message_id),
        ("webhook-timestamp", str(now)),
        ("webhook-signature", f"v1,{signature}"),
    ]
