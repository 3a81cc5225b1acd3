"""Read a bin's URL as a user pastes it: the capture URL, the page URL or the share link. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from app.domain import keys

# The path segment before a bin's id: its capture URL (/h/<id>) or its page (/bins/<id>).
_MARKERS = ("h", "bins")


class BadBinURL(ValueError):
    """The URL names no bin; the message says what was expected."""


@dataclass(frozen=True)
class BinRef:
    server: str  # scheme://host[:port] and any path prefix the server is mounted under
    bin_id: str
    key: str | None  # from a share link's #key=

    @property
    def shown(self) -> str:
        """The bin's page URL without its key, safe to print."""
        return f"{self.server}/bins/{self.bin_id}"


def parse(url: str) -> BinRef:
    """Find the server and the bin in a capture URL, page URL or share link."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadBinURL(
            "give the bin's URL, starting with http:// or https:// "
            "(its capture URL /h/<id>, its page /bins/<id>, or its share link)"
        )
    segments = parts.path.split("/")
    for index, segment in enumerate(segments[:-1]):
        bin_id = segments[index + 1]
        if segment in _MARKERS and keys.ID_PATTERN.fullmatch(bin_id):
            prefix = "/".join(segments[:index]).rstrip("/")
            key = dict(parse_qsl(parts.fragment)).get("key") or None
            return BinRef(f"{parts.scheme}://{parts.netloc}{prefix}", bin_id, key)
    raise BadBinURL(
        f"{parts.scheme}://{parts.netloc}{parts.path} names no bin: expected /h/<id> "
        "(the capture URL) or /bins/<id> (the page or share link)"
    )
