"""Bins in the database: create, read, change, delete, renew, prune, and the operator's fixed bins.

The rules (what a new bin gets, which changes are allowed) are app/domain/bins.py's; this module
stores what they produce, each change in a write transaction of its own (app/store/engine.py),
and tells this process's settings cache when a bin changed or went.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app.domain import bins as rules
from app.domain import clock, expiry, keys
from app.domain.models import Bin
from app.extensions import db
from app.store.bulk import Deletion
from app.store.engine import begin_write
from app.store.recorder import recorder_of
from app.store.settings import cache_of


@dataclass(frozen=True)
class Created:
    bin: Bin
    read_key: str | None


def create(
    *,
    name: str = "",
    description: str = "",
    bin_id: str | None = None,
    read_key: str | None = None,
    public: bool = False,
    fixed: bool = False,
    settings: dict[str, object] | None = None,
    checked: Mapping[str, object] | None = None,
    created_by: str | None = None,
) -> Created:
    """Create and store a new empty bin with a fresh read key (or the one given).

    ``settings`` and ``checked`` are what ``update_bin`` takes, checked before anything is stored;
    ``created_by`` is the user an authenticating proxy named, when there is one.
    """
    config = current_app.config
    now = clock.now()
    values = {**rules.validated(config, settings or {}, now), **(checked or {})}
    read_key = None if public else (read_key or keys.new_key())
    bin_ = Bin(
        id=bin_id or keys.new_id(),
        read_key_hash=keys.digest(read_key) if read_key else None,
        created_by=created_by,
        **rules.new_bin_values(config, now, name=name, description=description, fixed=fixed),
    )
    for column, value in values.items():
        setattr(bin_, column, value)
    begin_write()
    db.session.add(bin_)
    db.session.commit()
    return Created(bin_, read_key)


def get(bin_id: str) -> Bin | None:
    """Return the bin with this id, or None."""
    if not keys.ID_PATTERN.fullmatch(bin_id):
        return None
    return db.session.get(Bin, bin_id)


def update_bin(
    bin_: Bin, changes: dict[str, object], checked: Mapping[str, object] | None = None
) -> Bin:
    """Apply the allowed changes (name, description, limits, expiry, ingest protection).

    ``checked`` holds column values already checked elsewhere: the response settings, which
    app/web/responses.py checks with app/ingest/respond.
    """
    values = {**rules.validated(current_app.config, changes, clock.now()), **(checked or {})}
    if not values:
        return bin_
    if rules.touches_capture(values):
        values["settings_version"] = Bin.settings_version + 1
    _write(bin_, values)
    return bin_


def _write(bin_: Bin, values: dict[str, object]) -> None:
    begin_write()
    db.session.execute(update(Bin).where(Bin.id == bin_.id).values(**values))
    db.session.commit()
    db.session.refresh(bin_)
    cache_of(current_app).forget(bin_.id)


def delete_bin(bin_id: str) -> None:
    """Delete a bin with all its requests, in bounded batches (app/store/bulk.py)."""
    db.session.commit()  # the batches are written through the writer's connections
    recorder_of(current_app).bulk(Deletion(bin_id, drop_bin=True))
    cache_of(current_app).forget(bin_id)


def touch(bin_: Bin) -> None:
    """Renew a bin's expiry because someone looked at it (cheap: usually no write at all)."""
    now = clock.now()
    if not expiry.due_for_renewal(bin_.expires_after, bin_.expires_at, now):
        return
    begin_write()
    db.session.execute(
        update(Bin)
        .where(Bin.id == bin_.id)
        .values(expires_at=expiry.expiry(bin_.expires_after, now))
    )
    db.session.commit()
    db.session.refresh(bin_)


def prune(now: datetime | None = None) -> list[str]:
    """Delete every bin whose expiry has passed; return their ids.

    Each in bounded batches (app/store/bulk.py), for as long as it stays expired: a capture
    arriving meanwhile renews it, and it is kept with what it still holds.
    """
    now = now or clock.now()
    expired = db.session.scalars(
        select(Bin.id).where(Bin.expires_at.is_not(None), Bin.expires_at < now)
    ).all()
    db.session.commit()
    recorder, cache, pruned = recorder_of(current_app), cache_of(current_app), []
    for bin_id in expired:
        deletion = Deletion(bin_id, drop_bin=True, expired_at=now)
        recorder.bulk(deletion)
        cache.forget(bin_id)
        if deletion.dropped:
            pruned.append(bin_id)
    return pruned


def ensure_fixed(declared: list[dict[str, str]]) -> list[str]:
    """Create each bin the operator declared that does not exist yet; return the ids created."""
    created = []
    for entry in declared:
        existing = get(entry["id"])
        if existing is not None:
            _align_fixed(existing, entry)
            continue
        try:
            create(
                bin_id=entry["id"],
                name=entry.get("name", ""),
                description=entry.get("description", ""),
                read_key=entry.get("read_key"),
                public="read_key" not in entry,
                fixed=True,
            )
        except IntegrityError:
            db.session.rollback()  # another process created it first
        else:
            created.append(entry["id"])
    return created


def _align_fixed(bin_: Bin, entry: dict[str, str]) -> None:
    """Make an existing bin match its declaration: the operator's key and no expiry."""
    key = entry.get("read_key")
    wanted = keys.digest(key) if key else None
    if (bin_.read_key_hash, bin_.fixed, bin_.expires_at) == (wanted, True, None):
        return
    values = {"read_key_hash": wanted, "fixed": True, "expires_after": None, "expires_at": None}
    values["settings_version"] = Bin.settings_version + 1
    _write(bin_, values)
