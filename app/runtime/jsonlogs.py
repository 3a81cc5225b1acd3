"""HOOKSCOPE_LOG_FORMAT=json: gunicorn's lines as JSON objects too, one per line.

gunicorn's error log (its own lines: starting, workers booting and exiting, errors) and access
log (pages, the API, Socket.IO; captures log their own line) go through this ``Logger`` class,
named by app/runtime/serving.py. An access line's keys: ``remote``, ``user`` (a Basic user
name), ``method``, ``path`` (as sent, query included), ``protocol``, ``status``, ``bytes``,
``referer``, ``user_agent``, ``ms``. In this format gunicorn's ``access_log_format`` is not
used. The sender's values are written as sent, cut at ``logs.LIMIT`` characters; JSON's escaping
(ASCII only) keeps every one of them on its line.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from gunicorn import glogging

from app.logs import JsonFormatter, cut


def format_handlers(logger: logging.Logger) -> None:
    """Write every line of ``logger``'s handlers as JSON (the root logger's, gunicorn's)."""
    for handler in logger.handlers:
        handler.setFormatter(JsonFormatter())


class Logger(glogging.Logger):
    """gunicorn's logger, writing JSON objects."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        format_handlers(self.error_log)
        format_handlers(self.access_log)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        try:
            atoms = self.atoms(resp, req, environ, request_time)
            self.access_log.info(
                "access", extra={"fields": access_fields(atoms, environ), "event": "access"}
            )
        except Exception:
            self.error(traceback.format_exc())


def access_fields(atoms: dict[str, Any], environ: dict[str, Any]) -> dict[str, Any]:
    """An access line's keys, from gunicorn's atoms (the values as sent, cut)."""

    def text(value: Any) -> str | None:
        return None if value in (None, "-") else cut(str(value))

    status = str(atoms.get("s", ""))
    return {
        "remote": text(atoms.get("h")),
        "user": text(atoms.get("u")),
        "method": text(atoms.get("m")),
        "path": text(environ.get("RAW_URI") or atoms.get("U")),
        "protocol": text(atoms.get("H")),
        "status": int(status) if status.isdigit() else text(status),
        "bytes": atoms.get("B"),
        "referer": text(atoms.get("f")),
        "user_agent": text(atoms.get("a")),
        "ms": round(atoms.get("D", 0) / 1000, 1),
    }
