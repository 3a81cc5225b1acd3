"""Split an outbound URL into what the client connects to and what it sends. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


class BadURL(ValueError):
    """The URL cannot be sent; the message says why."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # ASCII (IDNA), lower case, IPv6 without brackets
    port: int
    authority: str  # the Host header's value
    target: str  # the request target: path and query as given

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)


def parse_url(url: str) -> Target:
    """Split an absolute http(s) URL, refusing what other software could read another way."""
    # WHATWG URL parsers read "\" as "/" and drop tabs and newlines; urlsplit does not.
    if any(c in url for c in "\\ ") or not url.isprintable():
        raise BadURL(f"{url!r} holds spaces, backslashes or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise BadURL(f"{url!r} is not a valid URL: {err}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise BadURL(f"{url!r}: only http:// and https:// URLs can be sent")
    if "@" in parts.netloc:
        # "http://good.example@127.0.0.1/" is also the old trick for hiding where a URL goes.
        raise BadURL(f"{url!r} holds credentials; send them in an Authorization header")
    host = parts.hostname or ""
    if not host:
        raise BadURL(f"{url!r} has no host")
    if not host.isascii():
        try:
            # IDNA maps look-alikes too: fullwidth "１２７.０.０.１" becomes 127.0.0.1.
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise BadURL(f"{url!r}: the host name is not valid") from None
    port = port or DEFAULT_PORTS[scheme]
    shown = f"[{host}]" if ":" in host else host
    authority = shown if port == DEFAULT_PORTS[scheme] else f"{shown}:{port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme, host, port, authority, target)
