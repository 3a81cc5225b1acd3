"""What the capture path needs of a bin, as one typed value, and each process's cache of it.

A capture needs a bin's settings twice: before it stores anything (does the bin exist; later, what
to answer) and inside the transaction that stores it (ingest protection, retention). The first
comes from ``SettingsCache``; the second from the bin's row as the transaction locks it, read by
the same ``COLUMNS`` into the same ``BinSettings``, so what is stored is always judged against the
settings committed at that moment.

Refresh rule for the cache, per process:

* a change made through this process (the API, the CLI) replaces the entry at once;
* a capture's transaction that finds a newer ``settings_version`` hands the fresh settings back,
  and the entry is replaced (``SettingsCache.offer``), so a change made by another process is
  seen by the first capture to that bin after it, and no capture is judged by stale settings;
* any entry older than ``REFRESH_SECONDS`` is read again before it is used, which bounds how long
  a decision made before the transaction (existence, later the custom answer) can lag another
  process's change.

Adding a setting the capture reads: a column on ``Bin`` (app/domain/models.py) with a migration,
a field here with the same name, and its validation in app/domain/bins.py. The writers' SQL reads
``COLUMNS``; nothing else changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

from app.domain import forwarding, keys

# The longest a cached entry is used without reading it again (see the module docstring).
REFRESH_SECONDS = 2.0
# Entries kept per process; past it the oldest goes (an entry costs a few hundred bytes).
MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class BinSettings:
    """A bin's settings as the capture path uses them. Field names are the ``bins`` columns."""

    id: str
    # Raised by every change of the fields below; a cached copy with a lower one is stale.
    settings_version: int
    max_requests: int
    expires_after: int | None
    ingest_auth: str | None
    ingest_secret_hash: str | None
    # Auto-forward targets as stored (a JSON list); ``targets`` reads them.
    forward_to: str | None = None

    @property
    def targets(self) -> tuple[str, ...]:
        """The URLs each accepted capture is forwarded to."""
        return forwarding.targets_of(self.forward_to)

    def allows(self, authorization: str | None) -> bool:
        """Tell whether a capture passes the bin's ingest protection."""
        if self.ingest_auth is None or self.ingest_secret_hash is None:
            return True
        presented = keys.normalised_authorization(authorization or "")
        return keys.same(presented, self.ingest_secret_hash)


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(BinSettings))


def from_row(row: Sequence[object]) -> BinSettings:
    """Build settings from a row whose first columns are ``COLUMNS``, in that order."""
    return BinSettings(*row[: len(COLUMNS)])  # type: ignore[arg-type]


class SettingsCache:
    """Bins' settings by id for one process, read through ``load`` (see the refresh rule above).

    A bin that does not exist is not remembered: one created by another process a moment ago
    must take captures at once.
    """

    def __init__(
        self,
        load: Callable[[str], BinSettings | None],
        refresh_seconds: float = REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._refresh = refresh_seconds
        self._clock = clock
        self._entries: dict[str, tuple[BinSettings, float]] = {}

    def get(self, bin_id: str) -> BinSettings | None:
        """Return the bin's settings, read again if the cached copy is too old; None: no bin."""
        entry = self._entries.get(bin_id)
        now = self._clock()
        if entry is not None and now - entry[1] < self._refresh:
            return entry[0]
        found = self._load(bin_id)
        if found is None:
            self._entries.pop(bin_id, None)
        else:
            self._keep(found, now)
        return found

    def offer(self, settings: BinSettings) -> None:
        """Keep ``settings`` if they are newer than the cached copy (a capture's transaction saw
        them), or if there is none."""
        entry = self._entries.get(settings.id)
        if entry is None or entry[0].settings_version < settings.settings_version:
            self._keep(settings, self._clock())

    def forget(self, bin_id: str) -> None:
        """Drop the bin's entry: it changed here, or it is gone."""
        self._entries.pop(bin_id, None)

    def _keep(self, settings: BinSettings, now: float) -> None:
        self._entries.pop(settings.id, None)
        if len(self._entries) >= MAX_ENTRIES:
            del self._entries[next(iter(self._entries))]
        self._entries[settings.id] = (settings, now)
