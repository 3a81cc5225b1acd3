"""A capture host of its own (HOOKSCOPE_CAPTURE_HOST): captures there, pages and the API elsewhere.

A bin's custom answer is whatever its owner wrote, served to anyone who opens the capture URL.
On a host of its own that answer shares no origin with the pages (no cookies, no storage, no
same-origin requests to the API), whatever a browser makes of it. So with a capture host set,
requests for it get only captures (and the health checks), and captures are refused on every
other host. The host is the request's ``Host`` (or, behind trusted proxies, what ProxyFix took
from ``X-Forwarded-Host``); a setting without a port matches any port.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.domain import paths

HEALTH_PATHS = frozenset({"/healthz", "/readyz"})


def request_host(environ: Mapping[str, Any]) -> str:
    """The host this request named, lower case, without a trailing dot."""
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
    return host.strip().lower().replace(".:", ":").rstrip(".")


def _without_port(host: str) -> str:
    if host.startswith("["):  # [::1]:8000
        return host.partition("]")[0] + "]"
    return host.partition(":")[0]


class HostSplit:
    """Decides which requests a host may have, once HOOKSCOPE_CAPTURE_HOST is set."""

    def __init__(self, capture_host: str, public_url: str) -> None:
        self.capture_host = capture_host
        self._with_port = _without_port(capture_host) != capture_host
        scheme = public_url.partition("://")[0] if public_url else "https"
        self.capture_base = f"{scheme}://{capture_host}"
        self.main = public_url or "this server's main address"

    def is_capture_host(self, environ: Mapping[str, Any]) -> bool:
        host = request_host(environ)
        return (host if self._with_port else _without_port(host)) == self.capture_host

    def refusal(self, environ: Mapping[str, Any], path: str) -> str | None:
        """Say why this host does not serve this path, or None when it does."""
        capture = path.startswith(paths.CAPTURE_PREFIX)
        if self.is_capture_host(environ):
            if capture or path in HEALTH_PATHS:
                return None
            return (
                f"{self.capture_host} only takes captures, under {paths.CAPTURE_PREFIX}<bin id>;"
                f" pages and the API are at {self.main} (HOOKSCOPE_CAPTURE_HOST)"
            )
        if capture:
            return (
                f"captures are taken at {self.capture_base}{paths.CAPTURE_PREFIX}<bin id>;"
                " nothing was stored (HOOKSCOPE_CAPTURE_HOST)"
            )
        return None
