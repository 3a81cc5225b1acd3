"""Where a relay is in a bin, per target: a small file in the user's state directory.

One file per (server, bin, target), named by a digest of the three: a JSON line naming them,
then one line per delivery with its sequence number; the last whole line is the position. Each
delivery appends its line with one write() (tens of microseconds, where writing a new file and
renaming it took milliseconds on a busy disk), and a process killed at any moment has either
written it or not: the kernel keeps what was written. Now and then the file is rewritten to
its last line (beside, then renamed). A lock file beside it keeps a second relay from sending
the same captures to the same target at the same time.
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


# Lines appended before the file is rewritten to its header and last line.
COMPACT_AFTER = 10_000


@dataclass
class Position:
    """The last sequence number delivered to one target, kept on disk."""

    path: Path
    server: str
    bin_id: str
    target: str
    delivered: int | None = None  # None: never relayed there
    _fd: int | None = None
    _appended: int = 0

    def save(self, delivered: int) -> None:
        """Record that every capture up to ``delivered`` has been dealt with for this target."""
        self.delivered = delivered
        if self._fd is None or self._appended >= COMPACT_AFTER:
            self._rewrite()
        os.write(self._fd, f"{delivered}\n".encode())  # type: ignore[arg-type]
        self._appended += 1

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _rewrite(self) -> None:
        """Start the file afresh: its header, then (appended next) the position."""
        self.close()
        header = {
            "server": self.server,
            "bin": self.bin_id,
            "target": self.target,
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(header) + "\n", encoding="utf-8")
        os.replace(temporary, self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._appended = 0


def file_for(state_dir: Path, server: str, bin_id: str, target: str) -> Path:
    """Name the position file of one (server, bin, target)."""
    digest = hashlib.sha256(json.dumps([server, bin_id, target]).encode()).hexdigest()[:32]
    return state_dir / "relay" / f"{digest}.json"


def load(state_dir: Path, server: str, bin_id: str, target: str) -> Position:
    """Read the saved position (None when there is none or it cannot be read)."""
    path = file_for(state_dir, server, bin_id, target)
    position = Position(path, server, bin_id, target)
    try:
        lines = path.read_bytes().split(b"\n")
    except OSError:
        return position
    # The last element is what follows the last line break: empty, or a line cut short.
    numbers = [line for line in lines[1:-1] if line.isdigit()]
    if numbers:
        position.delivered = int(numbers[-1])
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
        try:
            yield position
        finally:
            position.close()
