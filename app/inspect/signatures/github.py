"""GitHub: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``; no timestamp.

Per https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries: the
key is the webhook's secret, the message the payload's bytes. Re-signing recomputes it over the
body as sent (edited or not). The older SHA-1 ``X-Hub-Signature`` is made too when the capture
carried one.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from .common import header, hmac_sha256

NAME = "github"
TITLE = "GitHub"
HEADERS = ("X-Hub-Signature-256", "X-Hub-Signature")


def sign(
    secret: str, body: bytes, headers: Sequence[Sequence[str]], now: int
) -> list[tuple[str, str]]:
    """Sign ``body`` as GitHub does (``now`` is unused: GitHub signs no time)."""
    key = secret.encode()
    out = [("X-Hub-Signature-256", "sha256=" + hmac_sha256(key, body).hex())]
    if header(headers, "X-Hub-Signature") is not None:
        # SHA-1 is what GitHub's legacy header carries; it is made, not relied on, here.
        legacy = hmac.new(key, body, hashlib.sha1).hexdigest()
        out.append(("X-Hub-Signature", "sha1=" + legacy))
    return out
