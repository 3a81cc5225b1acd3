"""The worker's log lines: the handler gunicorn workers use, and a short way for the capture line.

Every capture logs one line. Through ``Logger.info`` that line cost about 20 µs of the worker's
~230 µs a capture: a ``LogRecord`` (file-name parsing included), gevent's lock in Python taken
twice (emit, flush), ``strftime``. ``info`` and ``capture`` write the same line straight through
the handler whenever that handler is all that logging would call; any other set-up (another
handler, a filter, another formatter, a level) takes the ordinary path.

HOOKSCOPE_LOG_FORMAT=json makes every line one JSON object (app/runtime/jsonlogs.py): the
handler is then a ``JsonLineHandler``, whose short way writes the capture's fields as keys.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import IO, Any

from gunicorn.glogging import SafeAtoms

FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
CAPTURE = "capture bin=%s method=%s path=%s size=%s status=%d ms=%.1f"
# The longest value of the sender's a log line shows (escaped, or in JSON, cut).
LIMIT = 300


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

    def line(self, level: int, message: str, name: str = "") -> None:
        """Write what ``emit`` would for a record of ``message`` at ``level`` made now (by the
        logger ``name``, which this format does not show)."""
        levelname = logging.getLevelName(level)
        now = time.time()  # as LogRecord takes it; msecs and asctime as Formatter makes them
        second = int(now)
        if second != self._second:
            formatter = self.own_formatter
            asctime = time.strftime(formatter.default_time_format, formatter.converter(now))
            self._second, self._asctime = second, asctime
        msecs = int((now - second) * 1000)
        self.write(f"[{self._asctime},{msecs:03d}] [{os.getpid()}] [{levelname}] {message}\n")

    def capture(
        self,
        bin_id: str,
        method: str,
        path: str,
        size: str | None,
        status: int,
        ms: float,
        name: str = "",
    ) -> None:
        """Write the capture's line (``CAPTURE``), the sender's values escaped."""
        message = CAPTURE % (
            printable(bin_id),
            printable(method),
            printable(path),
            size or "-",
            status,
            ms,
        )
        self.line(logging.INFO, message)

    def write(self, text: str) -> None:
        """Write one whole line, under the handler's lock."""
        with self.lock:
            try:
                self.stream.write(text)
                self.stream.flush()
            except RecursionError:
                raise
            except Exception:
                self.handleError(logging.makeLogRecord({"msg": text}))


class JsonFormatter(logging.Formatter):
    """Each record as one JSON object: time (UTC), pid, level, logger, message; the exception's
    text when there is one, and a capture line's fields as keys of their own."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "time": iso_time(record.created),
            "pid": record.process,
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        extra = getattr(record, "fields", None)  # a line's own keys (``logger.info(..., extra=)``)
        if isinstance(extra, dict):
            fields["message"] = getattr(record, "event", fields["message"])
            fields.update(extra)
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            fields["exception"] = record.exc_text
        if record.stack_info:
            fields["stack"] = self.formatStack(record.stack_info)
        return json_line(fields)


class JsonLineHandler(LineHandler):
    """A ``LineHandler`` whose lines are JSON objects (``JsonFormatter``), short way included."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(stream)
        self.own_formatter = JsonFormatter()
        self.setFormatter(self.own_formatter)

    def line(self, level: int, message: str, name: str = "") -> None:
        fields = {"time": iso_time(time.time()), "pid": os.getpid()}
        fields.update(level=logging.getLevelName(level), logger=name, message=message)
        self.write(json_line(fields) + "\n")

    def capture(
        self,
        bin_id: str,
        method: str,
        path: str,
        size: str | None,
        status: int,
        ms: float,
        name: str = "",
    ) -> None:
        # What json_line(capture_fields(...)) makes, put together here: a dict through
        # json.dumps cost three times the text line; each string through the encoder's C
        # quoting, the rest formatted, costs about what the text line does.
        length = str(int(size)) if size and size.isdigit() else "null"
        self.write(
            _CAPTURE_JSON
            % (
                iso_time(time.time()),
                os.getpid(),
                _quote(name),
                _quote(cut(bin_id)),
                _quote(cut(method)),
                _quote(cut(path)),
                length,
                status,
                ms,
            )
        )


# The capture line as JsonFormatter writes it (json.dumps' separators), keys in its order.
_CAPTURE_JSON = (
    '{"time": "%s", "pid": %d, "level": "INFO", "logger": %s, "message": "capture", "bin": %s,'
    ' "method": %s, "path": %s, "size": %s, "status": %d, "ms": %.1f}\n'
)
# A str as a JSON string literal, ASCII only (escapes control characters, quotes, backslashes).
_quote = json.encoder.encode_basestring_ascii


_LINE_HANDLERS = (LineHandler, JsonLineHandler)
_iso_second = (-1, "")


def iso_time(now: float) -> str:
    """``now`` as ISO 8601 in UTC with milliseconds (the second's text made once a second)."""
    global _iso_second
    second = int(now)
    if second != _iso_second[0]:
        _iso_second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{_iso_second[1]}.{int((now - second) * 1000):03d}Z"


def install(log_format: str, stream: IO[str]) -> LineHandler:
    """Give the "hookscope" logger its one handler (text or JSON lines), replacing any before."""
    logger = logging.getLogger("hookscope")
    for old in [h for h in logger.handlers if isinstance(h, LineHandler)]:
        logger.removeHandler(old)
    handler = (JsonLineHandler if log_format == "json" else LineHandler)(stream)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # the migrations' logging setup gives the root logger a handler too
    return handler


def _sole_line_handler(logger: logging.Logger, level: int) -> LineHandler | None:
    """The handler logging would pass ``logger``'s records to, if that is one plain LineHandler
    (or JsonLineHandler)."""
    found = None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        for handler in current.handlers:
            if (
                found is not None
                or type(handler) not in _LINE_HANDLERS
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
    handler.line(logging.INFO, msg % args if args else msg, logger.name)


def capture(
    logger: logging.Logger,
    bin_id: str,
    method: str,
    path: str,
    size: str | None,
    status: int,
    seconds: float,
) -> None:
    """Log a capture's line: ``CAPTURE`` as text, or its fields as JSON keys; written directly
    when a LineHandler is all it reaches."""
    if not logger.isEnabledFor(logging.INFO):
        return
    ms = seconds * 1000
    handler = _sole_line_handler(logger, logging.INFO)
    if handler is not None:
        handler.capture(bin_id, method, path, size, status, ms, logger.name)
        return
    args = (printable(bin_id), printable(method), printable(path), size or "-", status, ms)
    fields = capture_fields(bin_id, method, path, size, status, ms)
    logger.info(CAPTURE, *args, extra={"fields": fields, "event": "capture"})


def capture_fields(
    bin_id: str, method: str, path: str, size: str | None, status: int, ms: float
) -> dict[str, Any]:
    """The capture line's fields as JSON values: the sender's text cut, never escaped (JSON's
    own escaping keeps it on one line)."""
    return {
        "bin": cut(bin_id),
        "method": cut(method),
        "path": cut(path),
        "size": int(size) if size and size.isdigit() else None,
        "status": status,
        "ms": round(ms, 1),
    }


def cut(text: str, limit: int = LIMIT) -> str:
    """Bound a value the sender wrote, for a JSON line."""
    return text if len(text) <= limit else text[:limit] + "..."


def json_line(fields: dict[str, Any]) -> str:
    """One JSON object on one line, ASCII only (no sender's byte can end the line early)."""
    return json.dumps(fields, ensure_ascii=True, default=str)


def printable(text: str, limit: int = LIMIT) -> str:
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
