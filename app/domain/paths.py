"""Where a bin lives on the server: its capture URL's path and its page's. Pure.

The capture mount is said here once; the server, the capture gate and the links shown to users
all read it.
"""

from __future__ import annotations

from urllib.parse import quote

CAPTURE_MOUNT = "/h"
CAPTURE_PREFIX = CAPTURE_MOUNT + "/"


def capture_path(bin_id: str) -> str:
    """Return the path providers send to; everything below it lands in the same bin."""
    return f"{CAPTURE_MOUNT}/{bin_id}"


def page_path(bin_id: str) -> str:
    return f"/bins/{bin_id}"


def share_path(bin_id: str, read_key: str) -> str:
    """Return the bin page's path with the read key in the fragment, which no server sees."""
    return f"{page_path(bin_id)}#key={quote(read_key, safe='')}"
