"""Check auto-forward targets when a bin's owner saves them (they are checked again at send).

A target must be a URL the client can send to, reach only addresses the guard allows (its host
resolved now, as at send time), and not be a capture URL of this server (a loop).
"""

from __future__ import annotations

from collections.abc import Iterable

from . import guard, loop
from .connect import Failure, Resolver, checked_addresses, resolve_host
from .target import BadURL, parse_url


class Refusal(ValueError):
    """A target that cannot be kept: an API error code and a message naming the target."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def check(
    urls: Iterable[str],
    allow: guard.AllowList,
    own: loop.OwnURLs,
    resolve: Resolver = resolve_host,
) -> None:
    """Raise Refusal for the first target that cannot be forwarded to."""
    for url in urls:
        try:
            target = parse_url(url)
        except BadURL as err:
            raise Refusal("bad_forward_to", f"forward_to: {err}") from None
        looped = loop.loop_refusal(url, own)
        if looped:
            raise Refusal("forward_loop", looped)
        try:
            checked_addresses(target, allow, resolve)
        except Failure as failure:
            code = "target_forbidden" if failure.code == "target_forbidden" else "bad_forward_to"
            raise Refusal(code, f"forward_to {url}: {failure.message}") from None
