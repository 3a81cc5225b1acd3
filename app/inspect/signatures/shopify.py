"""Shopify: ``X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256 of the body>``.

Per https://shopify.dev/docs/apps/build/webhooks/subscribe/https ("Verify a webhook"): the
key is the app's client secret, the message the raw body; no timestamp is signed.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from .common import hmac_sha256

NAME = "shopify"
TITLE = "Shopify"
HEADERS = ("X-Shopify-Hmac-Sha256",)


def sign(
    secret: str, body: bytes, headers: Sequence[Sequence[str]], now: int
) -> list[tuple[str, str]]:
    """Sign ``body`` as Shopify does (``now`` is unused)."""
    digest = base64.b64encode(hmac_sha256(secret.encode(), body)).decode()
    return [("X-Shopify-Hmac-Sha256", digest)]
