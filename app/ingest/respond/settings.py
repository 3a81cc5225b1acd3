"""Apply a change to a bin's response settings, and read them back from storage.

``PATCH /api/v1/bins/<id>`` takes these keys (FIELDS) beside the bin's others; each replaces what
it names and leaves the rest::

    "response":   null (today's 200 "ok") or a response object (parse.py)
    "rules":      a list of rules (rules.py), or null for none
    "handshakes": {"enabled": true, "meta_verify_token": "...", "zoom_secret": "..."}
    "cors":       {"enabled": false, "origins": ["*"]}

In ``handshakes`` and ``cors`` a key left out stays as it is; a secret set to null is removed,
and ``"handshakes": null`` or ``"cors": null`` go back to the defaults. Secrets are never shown
again: the Meta verify token is kept only as its SHA-256 (compared in constant time), the Zoom
secret token as it is, because its HMAC needs it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from . import limits
from .parse import object_of, parse_response, text_of
from .rules import parse_rules
from .spec import DEFAULT_SETTINGS, STORABLE_VERSION, Invalid, ResponseSettings

FIELDS = ("response", "rules", "handshakes", "cors")
# The stored form of all of them together; with responder_for caching up to 256 versions per
# process, this bounds that cache too.
MAX_SETTINGS_BYTES = 256 * 1024
_ORIGIN = re.compile(r"https?://([a-z0-9.-]+|\[[0-9a-f:.]+\])(:\d{1,5})?")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def _flag(obj: dict[str, Any], key: str, where: str, default: bool) -> bool:
    value = obj.get(key, default)
    if not isinstance(value, bool):
        raise Invalid("bad_settings", f"{where}.{key} must be true or false", f"{where}.{key}")
    return value


def _secret(obj: dict[str, Any], key: str, where: str) -> str | None:
    if obj[key] is None:
        return None
    return text_of(obj[key], f"{where}.{key}", limits.MAX_SECRET, "bad_handshakes", minimum=1)


def digest(token: str) -> str:
    """Return the SHA-256 (hex) a verify token is kept as."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _handshakes(value: object, current: ResponseSettings) -> dict[str, Any]:
    where = "handshakes"
    if value is None:
        return {"handshakes": True, "meta_verify_token_sha256": None, "zoom_secret": None}
    obj = object_of(value, where, {"enabled", "meta_verify_token", "zoom_secret"})
    changes: dict[str, Any] = {"handshakes": _flag(obj, "enabled", where, current.handshakes)}
    if "meta_verify_token" in obj:
        token = _secret(obj, "meta_verify_token", where)
        changes["meta_verify_token_sha256"] = None if token is None else digest(token)
    if "zoom_secret" in obj:
        changes["zoom_secret"] = _secret(obj, "zoom_secret", where)
    return changes


def _cors(value: object, current: ResponseSettings) -> dict[str, Any]:
    where = "cors"
    if value is None:
        return {"cors": False, "cors_origins": ("*",)}
    obj = object_of(value, where, {"enabled", "origins"})
    changes: dict[str, Any] = {"cors": _flag(obj, "enabled", where, current.cors)}
    if "origins" in obj:
        origins = obj["origins"]
        field = f"{where}.origins"
        if not isinstance(origins, list) or not 1 <= len(origins) <= limits.MAX_CORS_ORIGINS:
            message = f'{field} must be a list of 1 to {limits.MAX_CORS_ORIGINS} origins, or ["*"]'
            raise Invalid("bad_cors", message, field)
        checked = []
        for i, origin in enumerate(origins):
            text = text_of(origin, f"{field}[{i}]", 200, "bad_cors", minimum=1).lower()
            if text != "*" and not _ORIGIN.fullmatch(text):
                message = f"{field}[{i}] must be * or an origin such as https://app.example.com"
                raise Invalid("bad_cors", message, f"{field}[{i}]")
            checked.append(text)
        changes["cors_origins"] = tuple(dict.fromkeys(checked))
    return changes


def apply(current: ResponseSettings, changes: Mapping[str, object]) -> ResponseSettings:
    """Check a change (the FIELDS of a PATCH) and return the settings it makes."""
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise Invalid("unknown_field", f"response settings have no {unknown[0]!r}", unknown[0])
    values: dict[str, Any] = {}
    if "response" in changes:
        given = changes["response"]
        values["response"] = None if given is None else parse_response(given, "response")
    if "rules" in changes:
        values["rules"] = parse_rules(changes["rules"])
    if "handshakes" in changes:
        values.update(_handshakes(changes["handshakes"], current))
    if "cors" in changes:
        values.update(_cors(changes["cors"], current))
    settings = dataclasses.replace(current, **values)
    size = len(stored_text(settings))
    if size > MAX_SETTINGS_BYTES:
        message = f"the response settings take {size} bytes; a bin holds {MAX_SETTINGS_BYTES}"
        raise Invalid("settings_too_large", message, "rules")
    return settings


def stored_text(settings: ResponseSettings) -> str:
    """Return the settings as the JSON text to store (canonical: sorted keys, no spaces)."""
    return json.dumps(settings.to_storable(), sort_keys=True, separators=(",", ":"))


def from_storable(data: Mapping[str, Any] | None) -> ResponseSettings:
    """Read settings back from their stored form (None or {}: the defaults).

    They are checked again, so a stored setting that a newer version refuses (a header added to
    the refused list, say) raises Invalid rather than being served.
    """
    if not data:
        return DEFAULT_SETTINGS
    if data.get("version") != STORABLE_VERSION:
        raise Invalid("bad_settings", f"stored settings of version {data.get('version')!r}", "")
    stored = data.get("handshakes") or {}
    sha = stored.get("meta_verify_token_sha256")
    if sha is not None and not (isinstance(sha, str) and _SHA256_HEX.fullmatch(sha)):
        raise Invalid("bad_settings", "the stored Meta verify token digest is malformed", "")
    settings = apply(
        DEFAULT_SETTINGS,
        {
            "response": data.get("response"),
            "rules": data.get("rules"),
            "handshakes": {
                "enabled": stored.get("enabled", True),
                "zoom_secret": stored.get("zoom_secret"),
            },
            "cors": data.get("cors"),
        },
    )
    return dataclasses.replace(settings, meta_verify_token_sha256=sha)
