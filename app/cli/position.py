"""Where a relay is in a bin, per target: a small file in the user's state directory.

One file per (server, bin, target), named by a digest of the three, holding the last sequence
number delivered there. It is replaced whole (written beside, then renamed), so a relay killed
at any moment leaves either the old position or the new one. A lock file beside it keeps a
second relay from sending the same captures to the same target at the same time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock, one relay per target is up to you
    fcntl = None  # type: ignore[assignment]


class PositionLocked(RuntimeError):
    """Another relay holds this (server, bin, target)."""


@dataclass
class Position:
    """The last sequence number delivered to one target, kept on disk."""

    path: Path
    server: str
    bin_id: str
    target: str
    delivered: int | None = None  # None: never relayed there

    def save(self, delivered: int) -> None:
        """Record that every capture up to ``delivered`` has been dealt with for this target."""
        self.delivered = delivered
        record = {
            "server": self.server,
            "bin": self.bin_id,
            "target": self.target,
            "delivered": delivered,
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(record) + "\n", encoding="utf-8")
        os.replace(temporary, self.path)


def file_for(state_dir: Path, server: str, bin_id: str, target: str) -> Path:
    """Name the position file of one (server, bin, target)."""
    digest = hashlib.sha256(json.dumps([server, bin_id, target]).encode()).hexdigest()[:32]
    return state_dir / "relay" / f"{digest}.json"


def load(state_dir: Path, server: str, bin_id: str, target: str) -> Position:
    """Read the saved position (None when there is none or it cannot be read)."""
    path = file_for(state_dir, server, bin_id, target)
    position = Position(path, server, bin_id, target)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return position
    delivered = record.get("delivered") if isinstance(record, dict) else None
    if isinstance(delivered, int) and not isinstance(delivered, bool) and delivered >= 0:
        position.delivered = delivered
    return position


@contextlib.contextmanager
def locked(position: Position):
    """Hold the position's lock for as long as the relay runs; refuse if another holds it."""
    position.path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = position.path.with_suffix(".lock")
    with open(lock_path, "a+", encoding="utf-8") as handle:
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise PositionLocked(
                    f"{holder} is already relaying this bin to {position.target}"
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"hookscope forward (pid {os.getpid()})")
            handle.flush()
        yield position
