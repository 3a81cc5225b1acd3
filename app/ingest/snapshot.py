"""Turn an incoming request into plain data to store. Pure: no database, no Flask globals.

WSGI hands us text decoded as Latin-1, which maps every byte to one character, so nothing is lost on
the way in; where those bytes are valid UTF-8 we show them as such.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

from app.domain.capture import Snapshot
from app.ingest.environ import RAW_HEADERS

_WORD = re.compile(r"[A-Za-z0-9]+")


def as_text(wsgi_str: str) -> str:
    """Show WSGI Latin-1 text as UTF-8 where its bytes are UTF-8; keep it as it is otherwise."""
    if wsgi_str.isascii():
        return wsgi_str  # the same in both readings, and by far the most common case
    try:
        raw = wsgi_str.encode("latin-1")
    except UnicodeEncodeError:
        return wsgi_str
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return wsgi_str


def canonical_name(name: str) -> str:
    """Title-case a header name as HTTP/1.1 tools print it (``X-Github-Event``, ``X_My_Field``)."""
    return _WORD.sub(lambda m: m.group(0).capitalize(), name)


def _environ_headers(environ: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    """Rebuild headers from the environ, for servers that give no raw list (tests, dev server)."""
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            yield key[5:].replace("_", "-"), value
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value != "":
            yield key.replace("_", "-"), value


def headers_of(environ: Mapping[str, Any]) -> list[list[str]]:
    """List the request's headers as ``[name, value]`` pairs in the order received.

    From the server's raw list the names are kept as sent, and chunked trailer fields follow;
    rebuilt from the environ (test clients, other servers) they can only be title-cased.
    """
    raw = environ.get(RAW_HEADERS)
    if raw is not None:
        # Trailer fields of a chunked body (read with the body) follow the header fields.
        trailers = getattr(environ.get("wsgi.input"), "trailers", None) or ()
        return [[as_text(name), as_text(value)] for name, value in (*raw, *trailers)]
    return [[canonical_name(name), as_text(value)] for name, value in _environ_headers(environ)]


def raw_target(environ: Mapping[str, Any]) -> str:
    """Return the request target as sent (percent-encoding intact), without scheme and host."""
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not target:
        path = quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""), safe="/%")
        query = environ.get("QUERY_STRING", "")
        return f"{path}?{query}" if query else path
    if not target.startswith("/") and "://" in target.split("?", 1)[0]:
        # absolute-form ("GET http://host/h/x HTTP/1.1"): keep what follows the authority. A
        # path (origin-form, always "/...") may hold "://" too: /h/x/callback/https://a/b.
        after_scheme = target.split("://", 1)[1]
        slash = after_scheme.find("/")
        target = after_scheme[slash:] if slash >= 0 else "/"
    return target


def below(path: str, mount: str) -> str:
    """Strip the bin's mount point (``/h/<id>``) from a raw path, if the path starts with it."""
    if path == mount or path.startswith(mount + "/"):
        return path[len(mount) :]
    # The client percent-encoded part of the mount; the router decoded it, we keep the raw form.
    return path


def take(environ: Mapping[str, Any], body: bytes, *, mount: str, received_at: datetime) -> Snapshot:
    """Describe one request exactly as received."""
    target = raw_target(environ)
    path, question_mark, query = target.partition("?")
    if not question_mark:
        # Some servers (werkzeug's test client) leave the query out of their raw URI.
        query = environ.get("QUERY_STRING", "")
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST") or _server_host(environ)
    return Snapshot(
        method=environ.get("REQUEST_METHOD", "GET"),
        path=as_text(below(path, mount)),
        query_string=as_text(query),
        headers=headers_of(environ),
        content_type=environ.get("CONTENT_TYPE") or None,
        body=body,
        remote_addr=environ.get("REMOTE_ADDR"),
        url=as_text(f"{scheme}://{host}{target}"),
        http_version=environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
        received_at=received_at,
    )


def _server_host(environ: Mapping[str, Any]) -> str:
    name, port = environ.get("SERVER_NAME", "localhost"), environ.get("SERVER_PORT", "")
    default = {"http": "80", "https": "443"}.get(environ.get("wsgi.url_scheme", "http"))
    return name if not port or port == default else f"{name}:{port}"
