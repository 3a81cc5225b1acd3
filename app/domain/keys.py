"""Secrets of a bin: ids, read keys and ingest credentials. Pure; compared in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

# Generated ids are 26 characters of base32 (128 random bits). Fixed bins declared by an operator
# may use other ids, so lookups accept any URL-safe token up to 64 characters.
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def new_id() -> str:
    """Return an unguessable bin id: 128 bits from ``secrets``, lower-case base32."""
    return base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=").lower()


def new_key() -> str:
    """Return a fresh read key: 192 bits from ``secrets``."""
    return secrets.token_urlsafe(24)


def digest(secret: str) -> str:
    """Hash a secret for storage; keys are random enough that no salt or stretching is needed."""
    # surrogatepass: a key sent over Socket.IO's JSON may hold lone surrogates; it must simply
    # not match, not crash.
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def same(secret: str, expected_digest: str) -> bool:
    """Compare a presented secret with a stored digest in constant time."""
    return hmac.compare_digest(digest(secret), expected_digest)


def authorization_value(kind: str, credentials: dict[str, str]) -> str:
    """Build the Authorization header a sender must present for ``basic`` or ``bearer``."""
    if kind == "basic":
        pair = f"{credentials['username']}:{credentials['password']}".encode()
        return "basic " + base64.b64encode(pair).decode("ascii")
    return "bearer " + credentials["token"]


def normalised_authorization(header: str) -> str:
    """Lower-case the scheme of an Authorization header (it is case-insensitive), keep the rest."""
    scheme, _, rest = header.strip().partition(" ")
    return f"{scheme.lower()} {rest.strip()}"


def opens(read_key_hash: str | None, key: str) -> bool:
    """Tell whether ``key`` opens a bin whose read key hashes to ``read_key_hash``.

    ``None`` is a fixed bin its operator declared public: anyone may read it.
    """
    if read_key_hash is None:
        return True
    return same(key, read_key_hash)
