"""What the client commands print: one line per capture on stdout, notes on stderr.

Captured text is hostile: a path or header could carry terminal escape sequences, so anything
that is not printable is shown escaped (``\\x1b``). ``--json`` lines are JSON objects with every
non-ASCII character escaped, one per line, flushed as written so a pipe sees each at once.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import IO, Any


def shown(text: str, keep: str = "") -> str:
    """Escape what a terminal would act on (control and format characters), keep the rest."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep else _escape(c) for c in text)


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def size(n: int) -> str:
    """Say a byte count briefly: 512 B, 1.2 KiB, 3.4 MiB."""
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.1f} MiB"


class Printer:
    """Write lines from several threads without interleaving them."""

    def __init__(self, as_json: bool, out: IO[str] | None = None, err: IO[str] | None = None):
        self.as_json = as_json
        self._out = out or sys.stdout
        self._err = err or sys.stderr
        self._lock = threading.Lock()
        self._notes: dict[str, str] = {}

    def line(self, record: dict[str, Any], text: str) -> None:
        """Print one capture's line: the record as JSON with --json, else the text."""
        written = json.dumps(record, ensure_ascii=True) if self.as_json else text
        with self._lock:
            self._out.write(written + "\n")
            self._out.flush()

    def note(self, topic: str, text: str) -> None:
        """Tell the user how things stand, on stderr; a note repeated on one topic is not."""
        with self._lock:
            if self._notes.get(topic) == text:
                return
            self._notes[topic] = text
            self._err.write(f"hookscope: {shown(text)}\n")
            self._err.flush()
