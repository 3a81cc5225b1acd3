"""Reading a bin's ``BinSettings`` for the capture path, and this process's cache of them."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import text

from app.domain import keys, settings
from app.domain.settings import BinSettings, SettingsCache
from app.extensions import db

EXTENSION = "hookscope.bin_settings"
_SELECT = text(f"SELECT {', '.join(settings.COLUMNS)} FROM bins WHERE id = :bin_id")  # noqa: S608


def load(bin_id: str) -> BinSettings | None:
    """Read the bin's settings in a short transaction of their own; None when there is no bin."""
    if not keys.ID_PATTERN.fullmatch(bin_id):
        return None  # no bin can have this id: spare the database
    with db.engine.connect() as conn:
        row = conn.execute(_SELECT, {"bin_id": bin_id}).one_or_none()
    return None if row is None else settings.from_row(row)


def cache_of(app: Flask) -> SettingsCache:
    """The app's settings cache (one per process); reads need the app's context."""
    cache = app.extensions.get(EXTENSION)
    if cache is None:

        def read(bin_id: str) -> BinSettings | None:
            with app.app_context():
                return load(bin_id)

        cache = app.extensions[EXTENSION] = SettingsCache(read)
    return cache
