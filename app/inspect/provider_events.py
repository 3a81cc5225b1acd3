"""Name the provider event a captured request carries, when a known provider sent it. Pure.

Most providers name the event in a header; Stripe (and Standard Webhooks senders) name it in the
JSON body's ``type``. A new provider is a row in one of the tables below.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

# (provider, the header naming the event), first match wins.
HEADER_EVENTS: tuple[tuple[str, str], ...] = (
    ("github", "X-GitHub-Event"),
    ("gitlab", "X-Gitlab-Event"),
    ("shopify", "X-Shopify-Topic"),
    ("bitbucket", "X-Event-Key"),
    ("woocommerce", "X-WC-Webhook-Topic"),
    ("gitea", "X-Gitea-Event"),
)
# (provider, a header only that provider sends, the body's JSON field naming the event).
BODY_EVENTS: tuple[tuple[str, str, str], ...] = (
    ("stripe", "Stripe-Signature", "type"),
    ("standard-webhooks", "Webhook-Signature", "type"),
    ("svix", "Svix-Signature", "type"),
)
# Larger bodies are not parsed to name their event: this runs for every request a CLI shows.
MAX_PARSED_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ProviderEvent:
    provider: str
    name: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.name}"


def event_of(headers: Sequence[Sequence[str]], body: bytes) -> ProviderEvent | None:
    """Return the provider and event a request names, or None when no known provider sent it."""
    values = {}
    for name, value in headers:
        values.setdefault(name.lower(), value)
    for provider, header in HEADER_EVENTS:
        named = values.get(header.lower(), "").strip()
        if named:
            return ProviderEvent(provider, named)
    for provider, header, field in BODY_EVENTS:
        if header.lower() in values:
            named = _json_field(body, field)
            if named:
                return ProviderEvent(provider, named)
    return None


def _json_field(body: bytes, field: str) -> str | None:
    if len(body) > MAX_PARSED_BYTES or not body.lstrip().startswith(b"{"):
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    value = document.get(field) if isinstance(document, dict) else None
    return value if isinstance(value, str) and value else None
