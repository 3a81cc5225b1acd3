"""The private parts of libraries Hookscope relies on, checked when the server starts.

Each reliance names the package, the part, and what would go wrong without it. Those packages are
pinned exactly in pyproject.toml (and everything in constraints.txt), so a part only goes missing
when someone installs other versions. Then the server says which package and version it needs,
and either refuses to start (``fallback`` False: captures would silently lose trailers or header
names, or bodies could not be refused safely) or takes the public path (``fallback`` True: live
events still arrive, only slower) and says so in its log.

``check`` looks at every reliance; ``enforce`` refuses to start on the first kind and logs the
second; ``usable`` is what the code with a fallback asks before it uses its part.
"""

from __future__ import annotations

import functools
import importlib
import io
import logging
import platform
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata

log = logging.getLogger("hookscope.internals")


@dataclass(frozen=True)
class Reliance:
    package: str  # the distribution, as pip names it
    part: str  # "module:Attribute.attribute"
    loses: str  # what goes wrong without it
    fallback: bool  # True: the public path is taken; False: the server refuses to start
    # Beyond existing, does it behave as assumed? (None: existing is all that is assumed)
    behaves: Callable[[], bool] | None = None


def _keeps_trailers() -> bool:
    """A chunked body read through the server's Body keeps its trailer fields."""
    from app.ingest.server import Body

    rfile = io.BytesIO(b"3\r\nabc\r\n0\r\nX-Trailer: kept\r\n\r\n")
    body = Body(rfile, None, chunked_input=True)
    return body.read() == b"abc" and body.trailers == [("X-Trailer", "kept")]


def _keeps_header_list() -> bool:
    """The parsed header section keeps names as sent, in order, with duplicates."""
    from app.ingest.server import read_headers

    found = read_headers(io.BytesIO(b"X_Under: 1\r\nA: 1\r\na: 2\r\n\r\n"))
    return list(found._headers) == [("X_Under", "1"), ("A", "1"), ("a", "2")]


GEVENT, ENGINEIO, SOCKETIO, PSYCOPG = "gevent", "python-engineio", "python-socketio", "psycopg"
PYTHON = "Python"  # the standard library's private parts
RELIANCES: tuple[Reliance, ...] = (
    Reliance(
        GEVENT,
        "gevent.pywsgi:Input._Input__read_chunk_trailer",
        "the trailer fields of chunked bodies would be dropped from captures",
        False,
        _keeps_trailers,
    ),
    Reliance(
        PYTHON,
        "email.message:Message",
        "captured header names, order and duplicates could not be kept as sent",
        False,
        _keeps_header_list,
    ),
    Reliance(
        GEVENT,
        "gevent.pywsgi:Input._discard",
        "a refused upload would be read to its end instead of the connection being closed",
        False,
    ),
    Reliance(
        GEVENT,
        "gevent.pywsgi:_InvalidClientInput",
        "a chunked body with a malformed trailer could not be refused",
        False,
    ),
    Reliance(
        GEVENT,
        "gevent.pywsgi:WSGIHandler._headers",
        "headers with underscores in their names could pose as others in the environ",
        False,
    ),
    Reliance(
        GEVENT,
        "gevent.pywsgi:WSGIHandler._handle_client_error",
        "malformed requests would not be answered with a reason",
        False,
    ),
    Reliance(
        GEVENT,
        "gevent.pywsgi:WSGIHandler._write_with_headers",
        "responses could not be written by the server's own writer",
        False,
    ),
    Reliance(
        GEVENT,
        "gevent.pywsgi:WSGIHandler._connection_upgrade_requested",
        "WebSocket connections could not be told from others when they end",
        False,
    ),
    Reliance(GEVENT, "gevent.pywsgi:MAX_REQUEST_LINE", "long request lines would get 414", False),
    Reliance(
        "gunicorn",
        "gunicorn.glogging:Logger.atoms_wrapper_class",
        "access-log lines would carry the control characters senders wrote",
        False,
    ),
    Reliance(
        ENGINEIO,
        "engineio.async_drivers._websocket_wsgi:SimpleWebSocketWSGI",
        "each live event would be framed once per watcher (slower fan-out)",
        True,
    ),
    Reliance(
        SOCKETIO,
        "socketio:Server._send_eio_packet",
        "each live event would be framed once per watcher (slower fan-out)",
        True,
    ),
    Reliance(
        SOCKETIO,
        "socketio:Manager.get_participants",
        "each live event would be framed once per watcher (slower fan-out)",
        True,
    ),
    *(
        Reliance(
            ENGINEIO,
            part,
            "a client that never reads would make the server hold what is sent to it, unbounded",
            False,
        )
        for part in ("engineio:Server.send_packet", "engineio.socket:Socket.poll")
    ),
    Reliance(
        SOCKETIO,
        "socketio:RedisManager._publish",
        "with Redis, each live event would be one message (more Redis work per capture)",
        True,
    ),
    Reliance(
        SOCKETIO,
        "socketio:RedisManager._listen",
        "with Redis, each live event would be one message (more Redis work per capture)",
        True,
    ),
    Reliance(
        PSYCOPG,
        "psycopg.errors:_WaitTimeout",
        "on PostgreSQL every round trip would wait a turn of the event loop more",
        True,
    ),
    Reliance(
        PSYCOPG,
        "psycopg:Connection.wait",
        "on PostgreSQL every round trip would wait a turn of the event loop more",
        True,
    ),
)


@dataclass(frozen=True)
class Finding:
    reliance: Reliance
    message: str


def _resolve(part: str) -> object:
    """Import ``module:attr.attr`` and return the attribute; raise if any step is missing.

    A class that Hookscope put in the library's module in place of the library's own (gevent's
    ``pywsgi.Input`` is app/ingest/server.py's ``Body``) is looked at as the library defines it.
    """
    module_name, _, path = part.partition(":")
    found: object = importlib.import_module(module_name)
    for name in path.split("."):
        found = getattr(found, name)
        if isinstance(found, type) and found.__module__.startswith("app."):
            found = next(c for c in found.__mro__ if not c.__module__.startswith("app."))
    return found


def installed(package: str) -> str:
    if package == PYTHON:
        return platform.python_version()
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def wanted(package: str) -> str:
    """The version Hookscope is pinned to (pyproject.toml), as pip would be asked for it."""
    if package == PYTHON:
        return "Python " + (metadata.metadata("hookscope").get("Requires-Python") or "3.11+")
    try:
        requirements = metadata.requires("hookscope") or []
    except metadata.PackageNotFoundError:
        requirements = []
    for requirement in requirements:
        match = re.match(rf"{re.escape(package)}\s*(\[[^\]]*\])?\s*([^;]+)", requirement, re.I)
        if match:
            return f"{package}{match.group(2).strip()}"
    return package


def _failure(reliance: Reliance) -> str | None:
    """Say why the reliance does not hold, or None when it does."""
    try:
        _resolve(reliance.part)
    except ImportError as err:
        if reliance.package == PSYCOPG and err.name == "psycopg":
            return None  # the postgres extra is not installed: nothing relies on it
        return f"cannot import {reliance.part.partition(':')[0]} ({err})"
    except AttributeError:
        return f"has no {reliance.part}"
    if reliance.behaves is not None:
        try:
            ok = reliance.behaves()
        except Exception as err:  # noqa: BLE001 - any failure means it does not behave
            return f"{reliance.part} does not behave as expected ({type(err).__name__}: {err})"
        if not ok:
            return f"{reliance.part} does not behave as expected"
    return None


def check(reliances: tuple[Reliance, ...] = RELIANCES) -> list[Finding]:
    """Every reliance that does not hold, each with a message an operator can act on."""
    findings = []
    for reliance in reliances:
        why = _failure(reliance)
        if why is None:
            continue
        consequence = (
            "Hookscope takes the public path instead"
            if reliance.fallback
            else "Hookscope refuses to start"
        )
        message = (
            f"{reliance.package} {installed(reliance.package)} {why}: {reliance.loses}."
            f" Install {wanted(reliance.package)} (make run installs it from constraints.txt);"
            f" until then {consequence}."
        )
        findings.append(Finding(reliance, message))
    return findings


def enforce() -> None:
    """Refuse to start when a reliance without a fallback fails; log the ones with one."""
    refusals = []
    for finding in check():
        if finding.reliance.fallback:
            log.warning("%s", finding.message)
        else:
            refusals.append(finding.message)
    if refusals:
        raise SystemExit("\n".join(refusals))


@functools.cache
def usable(part: str) -> bool:
    """Tell whether the code relying on ``part`` may use it (checked once per process)."""
    reliances = tuple(r for r in RELIANCES if r.part == part)
    if not reliances:
        raise KeyError(f"{part} is not a known reliance")
    return not check(reliances)
