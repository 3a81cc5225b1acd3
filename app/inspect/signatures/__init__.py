"""Webhook signature schemes: sign a body as a provider would (verification comes later). Pure.

Each scheme is one small module with ``HEADERS`` (what it sets) and ``sign``; ``SCHEMES`` is the
table. ``resign`` gives a captured request fresh signature headers, so a receiver configured
with a development secret accepts a replay made hours after the provider sent it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import github, shopify, standard_webhooks, stripe
from .common import BadSecret

__all__ = ["SCHEMES", "BadSecret", "Scheme", "resign"]

# (secret, body, the request's headers, unix time) -> the headers to set, in order
Signer = Callable[[str, bytes, Sequence[Sequence[str]], int], list[tuple[str, str]]]


@dataclass(frozen=True)
class Scheme:
    name: str
    title: str
    headers: tuple[str, ...]  # every header it sets, as the provider spells them
    sign: Signer


SCHEMES: dict[str, Scheme] = {
    module.NAME: Scheme(module.NAME, module.TITLE, module.HEADERS, module.sign)
    for module in (stripe, github, shopify, standard_webhooks)
}


def resign(
    scheme: str, secret: str, headers: Sequence[Sequence[str]], body: bytes, now: int
) -> list[list[str]]:
    """Return the headers with the scheme's signature headers made anew for ``body``.

    Each header the scheme sets takes the place of its first occurrence (name spelled as
    captured); further occurrences go; one the capture lacked is added at the end. Raises
    KeyError for an unknown scheme and BadSecret for a secret the scheme cannot use.
    """
    if not secret:
        raise BadSecret("the secret is empty")
    fresh = SCHEMES[scheme].sign(secret, body, headers, now)
    wanted = {name.lower(): value for name, value in fresh}
    out: list[list[str]] = []
    placed: set[str] = set()
    for name, value in headers:
        lower = str(name).lower()
        if lower not in wanted:
            out.append([str(name), str(value)])
        elif lower not in placed:
            out.append([str(name), wanted[lower]])
            placed.add(lower)
    out += [[name, value] for name, value in fresh if name.lower() not in placed]
    return out
