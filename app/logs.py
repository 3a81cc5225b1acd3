"""The worker's log lines: the handler gunicorn workers use, and a short way for the capture line.

Every capture logs one line. Through ``Logger.info`` that line cost about 20 µs of the worker's
~230 µs a capture: a ``LogRecord`` (file-name parsing included), gevent's lock in Python taken
twice (emit, flush), ``strftime``. ``info`` writes the same line straight through the handler
whenever that handler is all that logging would call; any other set-up (another handler, a
filter, another formatter, a level) takes the ordinary path.
"""

from __future__ import annotations

import logging
import os
import time
from typing import IO, Any

from gunicorn.glogging import SafeAtoms

FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"


def _native_rlock() -> Any:
    """A C lock even under gevent's monkey-patching (whose RLock is written in Python)."""
    try:
        from gevent.monkey import get_original
    except ImportError:  # pragma: no cover - gevent is a dependency
        import threading

        return threading.RLock()
    return get_original("_thread", "RLock")()


class LineHandler(logging.StreamHandler):
    """A ``StreamHandler`` with ``FORMAT`` that can also write a line without a ``LogRecord``.

    Its lock is a native one: nothing between acquiring and releasing it yields to the event loop
    (a write to a file or pipe blocks the thread, as it always did), so greenlets never find it
    taken, and the writer's native threads are still kept from interleaving lines.
    """

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(stream)
        self.own_formatter = logging.Formatter(FORMAT)
        self.setFormatter(self.own_formatter)
        self._second = -1
        self._asctime = ""

    def createLock(self) -> None:  # noqa: N802 - logging's name
        self.lock = _native_rlock()

    def line(self, level: int, message: str) -> None:
        """Write what ``emit`` would for a record of ``message`` at ``level`` made now."""
        levelname = logging.getLevelName(level)
        now = time.time()  # as LogRecord takes it; msecs and asctime as Formatter makes them
        second = int(now)
        if second != self._second:
            formatter = self.own_formatter
            asctime = time.strftime(formatter.default_time_format, formatter.converter(now))
            self._second, self._asctime = second, asctime
        msecs = int((now - second) * 1000)
        text = f"[{self._asctime},{msecs:03d}] [{os.getpid()}] [{levelname}] {message}\n"
        with self.lock:
            try:
                self.stream.write(text)
                self.stream.flush()
            except RecursionError:
                raise
            except Exception:
                self.handleError(logging.makeLogRecord({"msg": message, "levelno": level}))


def _sole_line_handler(logger: logging.Logger, level: int) -> LineHandler | None:
    """The handler logging would pass ``logger``'s records to, if that is one plain LineHandler."""
    found = None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        for handler in current.handlers:
            if (
                found is not None
                or type(handler) is not LineHandler
                or handler.filters
                or handler.formatter is not handler.own_formatter
                or level < handler.level
            ):
                return None
            found = handler
        if not current.propagate:
            break
        current = current.parent
    return found


def info(logger: logging.Logger, msg: str, *args: object) -> None:
    """``logger.info(msg, *args)``, written directly when a LineHandler is all it reaches."""
    if not logger.isEnabledFor(logging.INFO):
        return
    handler = _sole_line_handler(logger, logging.INFO)
    if handler is None:
        logger.info(msg, *args)
        return
    handler.line(logging.INFO, msg % args if args else msg)


def printable(text: str, limit: int = 300) -> str:
    """Escape what a sender controls for a log line: no CR/LF or control characters, bounded."""
    if len(text) <= limit and text.isascii() and text.isprintable() and "\\" not in text:
        return text  # nothing to escape: the common case, checked in C
    escaped = text.encode("unicode_escape").decode("ascii")
    return escaped if len(escaped) <= limit else escaped[:limit] + "..."


class AccessAtoms(SafeAtoms):
    """The values of gunicorn's access line, escaped as the capture line escapes them.

    gunicorn only puts a backslash before double quotes: the request line, User-Agent, Referer,
    the Basic user name and any header or environ value a custom format names would reach the log
    with ESC, CR and other control characters as sent. Values are escaped when the format reads
    them, so the few atoms a line uses cost a C-level check each.
    """

    def __init__(self, atoms: dict[str, Any]) -> None:
        dict.__init__(self, atoms)  # SafeAtoms' own escaping is done in __getitem__, after ours

    def __getitem__(self, key: str) -> Any:
        value = super().__getitem__(key)
        if isinstance(value, str):
            return printable(value).replace('"', '\\"')
        return value
