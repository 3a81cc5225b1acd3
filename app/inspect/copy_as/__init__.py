"""Turn a captured request into a command or code that sends it again. Pure: text in, text out.

Each snippet reproduces the method, URL, headers (in order, duplicates kept where the tool can)
and body bytes. Host, Content-Length and framing are left to the tool; hop-by-hop headers are
left out. Where a tool cannot send the capture exactly, the snippet's notes say how it differs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from . import curl, fetch, httpie, python
from .shape import INLINE_MAX_BYTES, Snippet, shape

__all__ = ["INLINE_MAX_BYTES", "TOOLS", "Snippet", "copy_as", "copy_as_all"]

TOOLS: dict[str, Callable[..., Snippet]] = {
    "curl": curl.snippet,
    "httpie": httpie.snippet,
    "python": python.snippet,
    "fetch": fetch.snippet,
}


def copy_as(
    tool: str,
    method: str,
    url: str,
    headers: Sequence[Sequence[str]],
    body: bytes,
    *,
    body_file: str | None = None,
) -> Snippet:
    """Build one tool's snippet (a key of TOOLS; KeyError otherwise).

    ``body_file`` names the raw body download: cURL and HTTPie read a binary body, or one
    larger than INLINE_MAX_BYTES, from it; without it the body is written in (base64 if binary).
    """
    return TOOLS[tool](shape(method, url, headers, body), body_file)


def copy_as_all(
    method: str,
    url: str,
    headers: Sequence[Sequence[str]],
    body: bytes,
    *,
    body_file: str | None = None,
) -> dict[str, Snippet]:
    """Build every tool's snippet, keyed as TOOLS."""
    shaped = shape(method, url, headers, body)
    return {tool: build(shaped, body_file) for tool, build in TOOLS.items()}
