"""Who may read a bin: whoever presents its read key, as a Bearer token or from the cookie.

The capture URL is public; the read key is not. Keys are compared as SHA-256 digests in constant
time, and a missing bin and a wrong key look the same to the caller.
"""

from __future__ import annotations

from flask import request, session

from app.domain import keys
from app.domain.models import Bin
from app.store import bins

# Most keys one browser keeps (the cookie must stay under 4 KB); the oldest are forgotten first.
MAX_REMEMBERED = 40
_NO_BIN_DIGEST = keys.digest("no such bin")


def key_fits(bin_: Bin | None, key: str) -> bool:
    """Tell whether ``key`` opens ``bin_``, comparing digests even when there is no bin."""
    if bin_ is None:
        keys.same(key, _NO_BIN_DIGEST)  # the same work as for a bin, so timing tells nothing
        return False
    return keys.opens(bin_.read_key_hash, key)


def bearer_token() -> str | None:
    """Return the token of an ``Authorization: Bearer`` header, if there is one."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def remembered_keys() -> dict[str, str]:
    """Return the read keys this browser's session cookie holds, by bin id."""
    held = session.get("keys")
    return dict(held) if isinstance(held, dict) else {}


def remember(bin_id: str, key: str) -> None:
    """Give this browser access to a bin from now on, through its session cookie."""
    held = remembered_keys()
    held.pop(bin_id, None)
    held[bin_id] = key
    session["keys"] = dict(list(held.items())[-MAX_REMEMBERED:])
    session.permanent = True


def forget(bin_id: str) -> None:
    """Drop a bin's key from this browser's cookie."""
    held = remembered_keys()
    if held.pop(bin_id, None) is not None:
        session["keys"] = held


def your_bins() -> list[Bin]:
    """Return the bins this browser holds keys for, most recently opened first."""
    return [bin_ for bin_id in reversed(remembered_keys()) if (bin_ := readable(bin_id))]


def readable(bin_id: str, key: str | None = None) -> Bin | None:
    """Return the bin if the caller holds its key (given, Bearer, or cookie), else None."""
    bin_ = bins.get(bin_id)
    candidates = [k for k in (key, bearer_token(), remembered_keys().get(bin_id)) if k] or [""]
    return bin_ if any(key_fits(bin_, candidate) for candidate in candidates) else None
