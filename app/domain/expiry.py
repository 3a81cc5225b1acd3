"""When activity pushes a bin's expiry out. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta

# Expiry is renewed by activity, but written at most this often per bin (or each 1% of the period).
RENEW_EVERY = timedelta(hours=1)


def expiry(expires_after: int | None, now: datetime) -> datetime | None:
    """Return when a bin with this inactivity period expires if nothing happens after ``now``."""
    return None if expires_after is None else now + timedelta(seconds=expires_after)


def due_for_renewal(expires_after: int | None, expires_at: datetime | None, now: datetime) -> bool:
    """Tell whether activity at ``now`` should push the expiry out (it moved enough to matter)."""
    if expires_after is None or expires_at is None:
        return False
    slack = min(RENEW_EVERY, timedelta(seconds=expires_after / 100))
    return expires_at < now + timedelta(seconds=expires_after) - slack
