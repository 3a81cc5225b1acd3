"""Absolute URLs handed to users: the capture URL they paste into a provider and the bin page."""

from __future__ import annotations

from urllib.parse import quote

from flask import current_app, request


def base_url() -> str:
    """Return HOOKSCOPE_PUBLIC_URL, or the scheme and host this request came in on."""
    return current_app.config["HOOKSCOPE_PUBLIC_URL"] or request.host_url.rstrip("/")


def bin_links(bin_id: str) -> dict[str, str]:
    """Return the bin's public capture URL and the URL of its page."""
    base = base_url()
    return {"capture_url": f"{base}/h/{bin_id}", "url": f"{base}/bins/{bin_id}"}


def share_url(bin_id: str, read_key: str) -> str:
    """Return a link that opens the bin for whoever has it.

    The key rides in the fragment, which browsers never send to a server, so it stays out of
    access logs, proxies and Referer headers.
    """
    return f"{base_url()}/bins/{bin_id}#key={quote(read_key, safe='')}"
