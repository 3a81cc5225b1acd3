"""What users are handed: absolute URLs (capture URL, bin page, share link) and the bin itself."""

from __future__ import annotations

from typing import Any

from flask import current_app, request

from app.domain import paths
from app.domain.models import Bin
from app.web import responses


def base_url() -> str:
    """Return HOOKSCOPE_PUBLIC_URL, or the scheme and host this request came in on."""
    return current_app.config["HOOKSCOPE_PUBLIC_URL"] or request.host_url.rstrip("/")


def capture_base() -> str:
    """Return where captures are taken: HOOKSCOPE_CAPTURE_HOST when set, else base_url()."""
    base = base_url()
    host = current_app.config["HOOKSCOPE_CAPTURE_HOST"]
    if not host:
        return base
    scheme = base.partition("://")[0]
    return f"{scheme}://{host}"


def bin_links(bin_id: str) -> dict[str, str]:
    """Return the bin's public capture URL and the URL of its page."""
    return {
        "capture_url": capture_base() + paths.capture_path(bin_id),
        "url": base_url() + paths.page_path(bin_id),
    }


def share_url(bin_id: str, read_key: str) -> str:
    """Return a link that opens the bin for whoever has it.

    The key rides in the fragment, which browsers never send to a server, so it stays out of
    access logs, proxies and Referer headers.
    """
    return base_url() + paths.share_path(bin_id, read_key)


def bin_dict(bin_: Bin, read_key: str | None = None) -> dict[str, Any]:
    """Serialise a bin for someone allowed to read it, with the links they need."""
    ceiling = current_app.config["HOOKSCOPE_BIN_MAX_BYTES"]
    body: dict[str, Any] = {
        **bin_.to_dict(ceiling),
        **bin_links(bin_.id),
        **responses.shown(bin_.response_settings),
    }
    if read_key:
        body["read_key"] = read_key
        body["share_url"] = share_url(bin_.id, read_key)
    return body
