"""Refuse forwarding a bin to a capture URL of this same server (it would loop). Pure.

A URL is this server's when its host and port are one of the server's own names (the public
URL's, the page's, where it listens) and its path is under the capture mount.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .target import BadURL, parse_url

# Names every host has for itself; with them, the port decides.
_LOCAL_NAMES = ("localhost", "127.0.0.1", "::1", "0.0.0.0", "::")  # noqa: S104 - names, not a bind


@dataclass(frozen=True)
class OwnURLs:
    """Where this server's capture URLs live."""

    authorities: frozenset[tuple[str, int]]  # (host, port), host lower case, IPv6 bare
    capture_prefix: str  # "/h/" (under any script root)


def own_urls(
    public_urls: Iterable[str], listen_host: str, listen_port: int, capture_prefix: str
) -> OwnURLs:
    """Collect the server's own (host, port) pairs from its URLs and where it listens."""
    found: set[tuple[str, int]] = set()
    for url in public_urls:
        if not url:
            continue
        try:
            target = parse_url(url)
        except BadURL:
            continue
        found.add((target.host, target.port))
    listen = listen_host.strip("[]").lower()
    names = _LOCAL_NAMES if listen in _LOCAL_NAMES else (listen,)
    found.update((name, listen_port) for name in names)
    return OwnURLs(frozenset(found), capture_prefix)


def loop_refusal(url: str, own: OwnURLs) -> str | None:
    """Say why forwarding to ``url`` would loop back into this server; None when it would not."""
    try:
        target = parse_url(url)
    except BadURL:
        return None  # the URL check says what is wrong with it
    if (target.host, target.port) in own.authorities and _under(urlsplit(url).path, own):
        return (
            f"{url} is a capture URL of this Hookscope server: forwarding to it would send "
            "every capture back in (a loop); forward to your own code instead"
        )
    return None


def _under(path: str, own: OwnURLs) -> bool:
    """Tell whether a path reaches the capture mount as this server would read it: decoded,
    with dot segments and repeated slashes resolved."""
    normal = posixpath.normpath(re.sub("/+", "/", "/" + unquote(path)))
    return (normal + "/").startswith(own.capture_prefix)
