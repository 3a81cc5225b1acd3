"""Stripe: ``Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``.

The key is the endpoint's signing secret as given (``whsec_...``), its text's bytes
(https://docs.stripe.com/webhooks#verify-manually).
"""

from __future__ import annotations

from collections.abc import Sequence

from .common import hmac_sha256

NAME = "stripe"
TITLE = "Stripe"
HEADERS = ("Stripe-Signature",)


def sign(
    secret: str, body: bytes, headers: Sequence[Sequence[str]], now: int
) -> list[tuple[str, str]]:
    """Sign ``body`` at ``now`` as Stripe does."""
    digest = hmac_sha256(secret.encode(), f"{now}.".encode() + body).hex()
    return [("Stripe-Signature", f"t={now},v1={digest}")]
