"""The request body stream the server hands the app: pywsgi's, made to stop and to keep trailers.

* The app can ``abandon()`` it (app/ingest/environ.py's ``ABANDON``): the connection is closed
  after the response instead of reading (draining) whatever the sender still has, for bodies
  refused as too large or too slow.
* A chunked body's trailer fields are kept (``trailers``), where pywsgi checks and drops them.

app/ingest/server.py makes it pywsgi's ``Input``, so every request's body is one of these.
"""

from __future__ import annotations

import io
from typing import Any

from gevent import pywsgi

from app.ingest.head import MAX_HEADER_FIELDS, MAX_HEADER_LINE, TOKEN
from app.internals import Reliance


class Body(pywsgi.Input):
    """pywsgi's request body stream: it can stop reading for good, and it keeps chunked trailers."""

    __slots__ = ("abandoned", "trailers")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.abandoned = False
        # Header fields sent after the last chunk of a chunked body, as (name, value) pairs.
        self.trailers: list[tuple[str, str]] = []

    def _Input__read_chunk_trailer(self, rfile: Any) -> bool:  # noqa: N802
        """Read one trailer line after the last chunk; False at the empty line that ends them.

        Replaces pywsgi's private reader (name-mangled), which validates trailer lines and then
        throws them away; tests/test_hostile_input.py checks that they are kept.
        """
        line = rfile.readline(MAX_HEADER_LINE + 1)
        if line in (b"\r\n", b"\n"):
            return False
        name, colon, value = line.decode("latin-1").partition(":")
        if (
            not line.endswith(b"\n")
            or not colon
            or not TOKEN.fullmatch(name)
            or len(self.trailers) >= MAX_HEADER_FIELDS
        ):
            self._chunked_input_error = True
            raise pywsgi._InvalidClientInput(f"invalid chunked trailer line {line[:100]!r}")
        self.trailers.append((name, value.strip(" \t\r\n")))
        return True

    def _discard(self) -> None:
        # After the response pywsgi reads what is left of the body to reach the next request;
        # an abandoned body is not read: the connection closes instead.
        if not self.abandoned:
            super()._discard()


def _keeps_trailers() -> bool:
    """A chunked body read through ``Body`` keeps its trailer fields."""
    rfile = io.BytesIO(b"3\r\nabc\r\n0\r\nX-Trailer: kept\r\n\r\n")
    body = Body(rfile, None, chunked_input=True)
    return body.read() == b"abc" and body.trailers == [("X-Trailer", "kept")]


def _pywsgi(part: str, loses: str) -> Reliance:
    return Reliance("gevent", f"gevent.pywsgi:{part}", loses, fallback=False)


# The private parts this module relies on (app/internals.py): without any of them captures would
# lose what they must keep, so the server refuses to start.
RELIANCES = (
    Reliance(
        "gevent",
        "gevent.pywsgi:Input._Input__read_chunk_trailer",
        "the trailer fields of chunked bodies would be dropped from captures",
        fallback=False,
        behaves=_keeps_trailers,
    ),
    _pywsgi(
        "Input._discard",
        "a refused upload would be read to its end instead of the connection being closed",
    ),
    _pywsgi("_InvalidClientInput", "a chunked body with a malformed trailer could not be refused"),
)
