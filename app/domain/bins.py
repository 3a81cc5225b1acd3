"""The rules of a bin: what a new bin gets, and which changes to its settings are allowed.

Pure apart from reading the operator's limits from ``config`` (the app's configuration mapping):
no database, no request. app/store/bins.py stores what these rules produce.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.domain import forwarding, keys
from app.domain.expiry import expiry

# Sequence numbers are 64-bit integers in every database; larger ones cannot name a request.
MAX_SEQ = 2**63 - 1
PAGE_LIMIT_DEFAULT = 50
PAGE_LIMIT_MAX = 200
NAME_MAX, DESCRIPTION_MAX = 200, 2000
INGEST_FIELDS = {"basic": ("username", "password"), "bearer": ("token",)}
# What a user may change (PATCH /api/v1/bins/<id>), and which of those the capture path reads:
# changing one of those raises the bin's settings_version (app/domain/settings.py).
CHANGEABLE = (
    "name",
    "description",
    "max_requests",
    "expires_after",
    "ingest_auth",
    "forward_to",
)
CAPTURE_COLUMNS = {
    "max_requests",
    "expires_after",
    "ingest_auth",
    "ingest_secret_hash",
    "forward_to",
}


class Invalid(ValueError):
    """A change to a bin that its rules refuse; the message says which and why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def new_bin_values(
    config: Mapping[str, Any],
    now: datetime,
    *,
    name: str = "",
    description: str = "",
    fixed: bool = False,
) -> dict[str, Any]:
    """The columns of a new, empty bin (its id and read key are the caller's)."""
    expires_after = None if fixed else config["HOOKSCOPE_BIN_TTL_SECONDS"]
    return {
        "name": text(name, NAME_MAX, "name"),
        "description": text(description, DESCRIPTION_MAX, "description"),
        "created_at": now,
        "last_seq": 0,
        "request_count": 0,
        "max_requests": config["HOOKSCOPE_DEFAULT_MAX_REQUESTS"],
        "expires_after": expires_after,
        "expires_at": expiry(expires_after, now),
        "fixed": fixed,
        "settings_version": 0,
    }


def is_text(value: object, limit: int, minimum: int = 0) -> bool:
    """Tell whether ``value`` is storable text: a string of bounded length that is valid Unicode.

    JSON can carry lone surrogates (``"\\ud800"``), which no database or UTF-8 encoder accepts.
    """
    if not isinstance(value, str) or not minimum <= len(value) <= limit:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def text(value: object, limit: int, what: str) -> str:
    if not is_text(value, limit):
        raise Invalid(f"bad_{what}", f"{what} must be text of at most {limit} characters")
    return value  # type: ignore[return-value]


def _max_requests(config: Mapping[str, Any], value: object) -> int:
    ceiling = config["HOOKSCOPE_MAX_REQUESTS_CEILING"]
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= ceiling:
        raise Invalid(
            "bad_max_requests",
            f"max_requests must be a whole number from 1 to {ceiling} "
            "(the operator sets the ceiling with HOOKSCOPE_MAX_REQUESTS_CEILING)",
        )
    return value


def _expires_after(config: Mapping[str, Any], value: object) -> int | None:
    if value is None:
        if not config["HOOKSCOPE_ALLOW_NEVER_EXPIRE"]:
            raise Invalid(
                "bad_expires_after",
                "this server does not keep bins forever (HOOKSCOPE_ALLOW_NEVER_EXPIRE)",
            )
        return None
    longest = config["HOOKSCOPE_MAX_BIN_TTL_SECONDS"]
    if not isinstance(value, int) or isinstance(value, bool) or not 60 <= value <= longest:
        raise Invalid(
            "bad_expires_after",
            f"expires_after must be seconds from 60 to {longest} "
            "(HOOKSCOPE_MAX_BIN_TTL_SECONDS), or null for never where allowed",
        )
    return value


def _ingest(value: object) -> tuple[str | None, str | None]:
    """Validate an ingest protection setting; return (kind, digest of the expected header)."""
    if value is None or value == {"type": "none"}:
        return None, None
    kind = value.get("type") if isinstance(value, dict) else None
    fields = INGEST_FIELDS.get(kind) if isinstance(kind, str) else None
    if (
        fields is None
        or set(value) != {"type", *fields}  # type: ignore[arg-type]
        or not all(is_text(value[f], 500, minimum=1) for f in fields)  # type: ignore[index]
    ):
        raise Invalid(
            "bad_ingest_auth",
            'ingest_auth must be null, {"type": "basic", "username": "...", "password": "..."}'
            ' or {"type": "bearer", "token": "..."}',
        )
    if kind == "basic" and ":" in value["username"]:  # type: ignore[index]
        raise Invalid("bad_ingest_auth", "a Basic username cannot contain ':'")
    return kind, keys.digest(keys.authorization_value(kind, value))  # type: ignore[arg-type]


def validated(
    config: Mapping[str, Any], changes: Mapping[str, object], now: datetime
) -> dict[str, object]:
    """Check changes to a bin's settings and turn them into column values."""
    unknown = set(changes) - set(CHANGEABLE)
    if unknown:
        raise Invalid("unknown_field", f"cannot change {', '.join(sorted(unknown))}")
    values: dict[str, object] = {}
    if "name" in changes:
        values["name"] = text(changes["name"], NAME_MAX, "name")
    if "description" in changes:
        values["description"] = text(changes["description"], DESCRIPTION_MAX, "description")
    if "max_requests" in changes:
        values["max_requests"] = _max_requests(config, changes["max_requests"])
    if "expires_after" in changes:
        values["expires_after"] = _expires_after(config, changes["expires_after"])
        values["expires_at"] = expiry(values["expires_after"], now)  # type: ignore[arg-type]
    if "ingest_auth" in changes:
        values["ingest_auth"], values["ingest_secret_hash"] = _ingest(changes["ingest_auth"])
    if "forward_to" in changes:
        try:
            values["forward_to"] = forwarding.stored_targets(changes["forward_to"])
        except forwarding.BadTargets as err:
            raise Invalid("bad_forward_to", str(err)) from None
    return values


def touches_capture(values: Mapping[str, object]) -> bool:
    """Tell whether a change alters what the capture path reads (and so its settings_version)."""
    return not CAPTURE_COLUMNS.isdisjoint(values)
