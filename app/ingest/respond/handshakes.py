"""Verification handshakes that a new bin passes by itself, one table row per provider.

Each row names the method, a cheap check that needs no parsing (a marker in a small JSON body or
in the query string), and the answer. On a bin with handshakes on (the default) every capture
runs the cheap checks, so a bin with no settings pays a few string comparisons: a body over
MAX_HANDSHAKE_BODY (4 KiB) or not starting like a JSON object is not searched at all, and each
marker is searched for once. A body is parsed only when its marker is there. An echo is the
challenge exactly, nothing appended. The documented request and answer of each provider are
cited in tests/test_respond_handshakes.py.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .answer import Answer, custom
from .limits import MAX_HANDSHAKE_BODY
from .spec import ResponseSettings
from .view import RequestView

_PLAIN = "text/plain"


def _echo(name: str, challenge: str) -> Answer:
    return custom(200, challenge.encode("utf-8"), _PLAIN, source="handshake", handshake=name)


def _refuse(name: str, reason: str) -> Answer:
    body = (reason + "\n").encode()
    return custom(403, body, "text/plain; charset=utf-8", source="handshake", handshake=name)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _first(view: RequestView, name: str) -> str | None:
    values = view.query_values(name)
    return values[0] if values and values[0] else None


def _twitch(view: RequestView, settings: ResponseSettings) -> Answer | None:
    if view.header("Twitch-Eventsub-Message-Type") != "webhook_callback_verification":
        return None
    document = view.json
    challenge = _text(document.get("challenge")) if isinstance(document, dict) else None
    return None if challenge is None else _echo("twitch", challenge)


def _slack(view: RequestView, settings: ResponseSettings) -> Answer | None:
    document = view.json
    if not isinstance(document, dict) or document.get("type") != "url_verification":
        return None
    challenge = _text(document.get("challenge"))
    return None if challenge is None else _echo("slack", challenge)


def _zoom(view: RequestView, settings: ResponseSettings) -> Answer | None:
    document = view.json
    if not isinstance(document, dict) or document.get("event") != "endpoint.url_validation":
        return None
    payload = document.get("payload")
    plain = _text(payload.get("plainToken")) if isinstance(payload, dict) else None
    if plain is None:
        return None
    if settings.zoom_secret is None:
        # Zoom cannot be answered without the app's secret token; say so, rather than answer
        # something Zoom would only call a failed validation.
        return _refuse(
            "zoom",
            "cannot answer Zoom's URL validation: this bin has no Zoom secret token"
            " (set handshakes.zoom_secret to the app's Secret Token)",
        )
    key = settings.zoom_secret.encode("utf-8")
    encrypted = hmac.new(key, plain.encode("utf-8"), hashlib.sha256).hexdigest()
    body = json.dumps({"plainToken": plain, "encryptedToken": encrypted}, separators=(",", ":"))
    return custom(200, body.encode(), "application/json", source="handshake", handshake="zoom")


def _graph(view: RequestView, settings: ResponseSettings) -> Answer | None:
    token = _first(view, "validationToken")  # parse_qsl has URL-decoded it, as Graph asks
    return None if token is None else _echo("graph", token)


def _dropbox(view: RequestView, settings: ResponseSettings) -> Answer | None:
    challenge = _first(view, "challenge")
    return None if challenge is None else _echo("dropbox", challenge)


def _meta(view: RequestView, settings: ResponseSettings) -> Answer | None:
    challenge = _first(view, "hub.challenge")
    if _first(view, "hub.mode") != "subscribe" or challenge is None:
        return None
    wanted = settings.meta_verify_token_sha256
    if wanted is not None:
        given = hashlib.sha256((_first(view, "hub.verify_token") or "").encode()).hexdigest()
        if not hmac.compare_digest(given, wanted):
            reason = "hub.verify_token does not match this bin's handshakes.meta_verify_token"
            return _refuse("meta", reason)
    return _echo("meta", challenge)


_JSON_START = (b"{", b" ", b"\t", b"\r", b"\n")


@dataclass(frozen=True)
class Handshake:
    name: str
    method: str
    # The cheap check: is ``marker`` in the (small, JSON) body, or in the query string?
    marker: bytes | str
    answer: Callable[[RequestView, ResponseSettings], Answer | None]  # None: it is not one


HANDSHAKES = (
    # Twitch is told by its header; Slack's and Twitch's bodies both hold "challenge".
    Handshake("twitch", "POST", b'"challenge"', _twitch),
    Handshake("slack", "POST", b'"challenge"', _slack),
    Handshake("zoom", "POST", b'"plainToken"', _zoom),
    Handshake("graph", "POST", "validationToken=", _graph),
    # Meta before Dropbox: "hub.challenge=" holds "challenge=".
    Handshake("meta", "GET", "hub.mode=", _meta),
    Handshake("dropbox", "GET", "challenge=", _dropbox),
)
_BY_METHOD: dict[str, list[Handshake]] = {}
for _row in HANDSHAKES:
    _BY_METHOD.setdefault(_row.method, []).append(_row)


def _searcher(markers: list[str] | list[bytes]) -> Callable[[Any], Any] | None:
    """One search for any of the markers (one call, however many handshakes there are)."""
    if not markers:
        return None
    if isinstance(markers[0], bytes):
        return re.compile(b"|".join(re.escape(m) for m in markers)).search  # type: ignore[arg-type]
    return re.compile("|".join(re.escape(m) for m in markers)).search  # type: ignore[arg-type]


# Per method, one search for the markers of its handshakes: in the query string, in the body.
_QUERY_SEARCH = {
    method: _searcher([row.marker for row in rows if isinstance(row.marker, str)])
    for method, rows in _BY_METHOD.items()
}
_BODY_SEARCH = {
    method: _searcher([row.marker for row in rows if isinstance(row.marker, bytes)])
    for method, rows in _BY_METHOD.items()
}


def might_be(method: str, query_string: str, body: bytes) -> bool:
    """Tell cheaply, from the raw request, whether it could be a handshake at all.

    The capture gate asks this first on a bin with no settings, so that captures that are not
    handshakes (nearly all) build nothing: a method lookup, then at most one search of the query
    string and one of a body of at most MAX_HANDSHAKE_BODY bytes that starts like JSON.
    """
    if method not in _QUERY_SEARCH:
        return False
    query = _QUERY_SEARCH[method]
    if query_string and query is not None and query(query_string) is not None:
        return True
    search = _BODY_SEARCH[method]
    return (
        search is not None
        and 0 < len(body) <= MAX_HANDSHAKE_BODY
        and body[:1] in _JSON_START
        and search(body) is not None
    )


def detect(view: RequestView, settings: ResponseSettings) -> Answer | None:
    """Return the answer to a verification handshake, or None when this is not one."""
    if not might_be(view.method, view.query_string, view.body):
        return None  # nearly every capture: one search each of the query string and body
    rows = _BY_METHOD[view.method]
    body = view.body
    # Only a small body that starts like a JSON object is searched, each marker once.
    searchable = 0 < len(body) <= MAX_HANDSHAKE_BODY and body[:1] in _JSON_START
    found: dict[bytes, bool] = {}
    for handshake in rows:
        marker = handshake.marker
        if isinstance(marker, str):
            hit = marker in view.query_string
        elif not searchable:
            continue
        else:
            hit = found.get(marker)
            if hit is None:
                hit = found[marker] = marker in body
        if hit:
            answer = handshake.answer(view, settings)
            if answer is not None:
                return answer
    return None
