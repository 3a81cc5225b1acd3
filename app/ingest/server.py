"""The HTTP server inside each gunicorn worker: gevent's pywsgi, adapted to a request bin.

gunicorn's own gevent worker parses HTTP in pure Python and measured at about 3,800 requests/s for
an empty app on this kind of machine, below the ingest target before any capture work; its
``GeventPyWSGIWorker`` (gevent's C-accelerated pywsgi) answered 6,500/s. This module subclasses
that worker to give the capture what a request bin needs and pywsgi does not offer:

* the header list exactly as received (order, duplicates, underscore names) in the environ,
  under ``RAW_HEADERS``, with our own limits on header count and size answered with ``431``;
* strict framing (RFC 9112, 6): a request whose body's end could be read two ways (two
  Content-Lengths, Content-Length with Transfer-Encoding, a coding other than chunked alone, a
  malformed length, a header line with a bare CR, a NUL or a name that is not a token) is refused
  before the app runs and its connection closed, so no part of it can be read as another request;
* a longer request line than pywsgi's 8 KiB, so senders with long query strings are captured;
* a body stream the app can ``abandon()``: the connection is closed after the response instead of
  reading (draining) whatever the sender still has, for bodies refused as too large or too slow;
  it keeps a chunked body's trailers (``Body``, app/ingest/body_input.py);
* a way to close the connection without answering at all (``HANG_UP``), for a bin rehearsing a
  timeout;
* the socket where simple-websocket looks for it, for Socket.IO's WebSocket transport;
* no access-log line for captures, which log one structured line of their own, and on the
  other lines everything the sender wrote escaped as the capture line escapes it;
* the Date header formatted once a second, and a short response (every capture's answer) sent
  with one ``send`` (app/ingest/sending.py).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import gevent
from gevent import pywsgi
from gunicorn.workers.ggevent import GeventPyWSGIWorker

from app.domain.paths import CAPTURE_PREFIX
from app.ingest.body_input import Body
from app.ingest.environ import ABANDON, BODY_TIMER, HANG_UP, RAW_HEADERS
from app.ingest.head import (
    MAX_HEADER_FIELDS,
    MAX_HEADER_LINE,
    BadHead,
    Headers,
    HeadTooLarge,
    check_framing,
    read_headers,
)
from app.ingest.sending import DateHeader, OneSendHandler
from app.internals import PYTHON, Reliance
from app.logs import AccessAtoms

# pywsgi answers 414 past this many characters in the request line (8 KiB by default).
pywsgi.MAX_REQUEST_LINE = 64 * 1024
# A connection must deliver a request's line and headers within this many seconds of starting to
# wait for them (idle keep-alive time included), or it is closed: slow-header senders hold nothing.
# The worker sets it from HOOKSCOPE_HEAD_TIMEOUT_SECONDS.
HEAD_TIMEOUT = 15


_HEAD_WITH_BODY = "HEAD\x00"
# method SP request-target SP HTTP-version, nothing more (RFC 9112, 3); pywsgi alone would also
# take runs of blanks, tabs and HTTP/0.9's version-less line.
_REQUEST_LINE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+ [^\s]+ HTTP/[0-9]\.[0-9]")


class HeadTimeout(OSError):
    """The request line or headers did not arrive in time (an OSError: pywsgi closes quietly)."""


# pywsgi's get_environ makes each request's body stream from the module's Input: make it ours
# rather than replace the one it made (a second object for every request).
pywsgi.Input = Body
# pywsgi formats the Date header for every response; this, once a second.
pywsgi.format_date_time = DateHeader(pywsgi.format_date_time)


def _refusal(status: bytes, text: bytes) -> bytes:
    """A complete response for a request refused before the app saw it; the connection closes."""
    return (
        b"HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (status, len(text), text)
    )


class Handler(OneSendHandler):
    """One connection: pywsgi's handler with the additions in the module docstring."""

    _head_timer: gevent.Timeout | None = None
    _body_timer: gevent.Timeout | None = None
    head_timeout: float = HEAD_TIMEOUT

    def MessageClass(self, rfile: Any, *_: Any) -> Headers:  # noqa: N802 - pywsgi's name
        headers = read_headers(rfile)
        if headers.framing is not None:
            # Before pywsgi reads the framing its own, looser way (int() takes "+5" and "1_0",
            # the first of two Content-Lengths wins, "gzip, chunked" reads no body at all).
            check_framing(self.request_version, headers.framing)
        if self.command == "HEAD":
            # pywsgi refuses a HEAD request with a body (400); a request bin captures it. The
            # method is hidden from that one check and restored in get_environ, right after.
            self.command = _HEAD_WITH_BODY
        return headers

    def read_request(self, raw_requestline: str) -> bool:
        line = raw_requestline.rstrip("\r\n")
        if not _REQUEST_LINE.fullmatch(line):
            raise ValueError(f"Invalid HTTP request line: {line[:100]!r}")
        return super().read_request(raw_requestline)

    def read_requestline(self) -> str:
        # One timer per connection, started for each request's head: cheaper than a new one each.
        if self._head_timer is None:
            self._head_timer = gevent.Timeout(self.head_timeout, HeadTimeout("request head"))
        else:
            # A keep-alive connection's next request: let the others have their turn first.
            # Reading a request already in the socket's buffer does not wait, so without this
            # a few busy connections keep the worker and the rest wait for seconds.
            gevent.sleep(0)
        self._head_timer.cancel()
        self._head_timer.start()
        return super().read_requestline()

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()

    def handle(self) -> None:
        try:
            super().handle()
        finally:
            for timer in (self._head_timer, self._body_timer):
                if timer is not None:
                    timer.close()
            self._head_timer = self._body_timer = None

    def _handle_client_error(self, ex: Exception) -> tuple[str, bytes]:
        self._stop_head_timer()
        # This request has no environ: let no access line show the previous request's instead.
        self.environ = None
        self._count_refused(ex)
        if isinstance(ex, BadHead):
            self.log_error("(from %s) %s", self.client_address, ex)
            text = f"{ex}; nothing was stored\n".encode("latin-1", "backslashreplace")
            return ex.status[:3].decode(), _refusal(ex.status, text)
        if isinstance(ex, HeadTooLarge):
            text = (
                f"{ex}; this server accepts up to {MAX_HEADER_FIELDS} header fields of up to"
                f" {MAX_HEADER_LINE} bytes each; nothing was stored\n"
            ).encode()
            self.log_error("(from %s) %s", self.client_address, ex)
            return "431", _refusal(b"431 Request Header Fields Too Large", text)
        super()._handle_client_error(ex)  # logs it
        reason = str(ex) if isinstance(ex, ValueError) else "the request could not be parsed"
        text = f"{reason}; nothing was stored\n".encode("latin-1", "backslashreplace")
        return "400", _refusal(b"400 Bad Request", text)

    def _count_refused(self, ex: Exception) -> None:
        """Count a request refused before its bin was known, in this process (ingest/tally.py)."""
        from app.ingest.tally import tally_of

        if isinstance(ex, BadHead):
            reason = "bad_request_head"
        elif isinstance(ex, HeadTooLarge):
            reason = "head_too_large"
        else:
            reason = "unreadable_request"
        # pywsgi sets self.application only once a request was read whole: ask the server.
        app = getattr(self.server, "application", None)
        if hasattr(app, "extensions"):  # the Flask app (not in bare server tests)
            tally_of(app).count_process(reason)

    def get_environ(self) -> dict[str, Any]:
        self._stop_head_timer()  # the head is complete: from here the app sets its own deadlines
        if self.command == _HEAD_WITH_BODY:
            self.command = "HEAD"
        env = super().get_environ()
        env[RAW_HEADERS] = tuple(self.headers._headers)
        # simple-websocket (Socket.IO's WebSocket transport) finds the connection under this name.
        env["gunicorn.socket"] = self.socket
        if env["wsgi.input"] is self.wsgi_input:  # a Body (pywsgi.Input, below)
            env[ABANDON] = self._abandon
            env[BODY_TIMER] = self.body_timer
        env[HANG_UP] = self._hang_up
        return env

    def _headers(self) -> Iterator[tuple[str, str]]:
        # pywsgi's own joins each field into a line (Headers.headers) and splits it again.
        # Underscore names stay out of the environ, as pywsgi has it (they are in RAW_HEADERS).
        for name, value in self.headers._headers:
            if "_" in name:
                continue
            key = name.replace("-", "_").upper()
            if key != "CONTENT_TYPE" and key != "CONTENT_LENGTH":
                yield "HTTP_" + key, value.strip()

    def body_timer(self, seconds: float, exception: type[BaseException]) -> gevent.Timeout:
        """A timer for this connection's request bodies, made once: the app starts and cancels
        it for each request (cheaper than a new one each; the head timer does the same)."""
        timer = self._body_timer
        if timer is None or timer.seconds != seconds or timer.exception is not exception:
            if timer is not None:
                timer.close()
            timer = self._body_timer = gevent.Timeout(seconds, exception)
        return timer

    def _abandon(self) -> None:
        """Answer, then close the connection without reading the rest of the body."""
        self.wsgi_input.abandoned = True
        self.close_connection = True

    def _hang_up(self) -> None:
        """Send nothing for this request and close the connection.

        The app then returns an empty body without calling start_response: pywsgi writes a
        response only once a status is set, so nothing goes out, and the handler closes the
        socket instead of reading the next request.
        """
        self.close_connection = True

    def run_application(self) -> None:
        try:
            super().run_application()
        except StopIteration:
            # Socket.IO's WebSocket transport took the connection over (it finds it under
            # "gunicorn.socket") and, when it ends, says so the way gunicorn's own workers expect.
            # There is nothing left to answer on this connection: close it quietly.
            if not self._connection_upgrade_requested():
                raise
            self.close_connection = True
            self.status = b"101 Switching Protocols"
            self.response_headers = []
            self.headers_sent = True

    def log_request(self) -> None:
        # Captures log their own line; a request refused before it had an environ has its line in
        # the error log (_handle_client_error), and gunicorn's access line needs the environ.
        if self.environ is not None and not (self.path or "").startswith(CAPTURE_PREFIX):
            super().log_request()


class Worker(GeventPyWSGIWorker):
    """gunicorn's pywsgi worker with the ``Handler`` above."""

    wsgi_handler = Handler

    def init_process(self) -> None:
        # In the worker, after the fork: the master's logger writes no access lines.
        if not hasattr(self.log, "atoms_wrapper_class"):
            # gunicorn's Logger.access() wraps its values in this class (gunicorn 23 to 27); a
            # logger without it would write the sender's control characters into the log.
            raise RuntimeError(
                f"{type(self.log).__name__} has no atoms_wrapper_class: Hookscope needs gunicorn's"
                " Logger (gunicorn>=23,<28) or a subclass, to escape access-log lines"
            )
        self.log.atoms_wrapper_class = AccessAtoms
        super().init_process()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        config = getattr(self.wsgi, "config", {})
        Handler.head_timeout = config.get("HOOKSCOPE_HEAD_TIMEOUT_SECONDS", HEAD_TIMEOUT)


def _keeps_header_list() -> bool:
    """The parsed header section keeps names as sent, in order, with duplicates."""
    found = read_headers(io.BytesIO(b"X_Under: 1\r\nA: 1\r\na: 2\r\n\r\n"))
    return list(found._headers) == [("X_Under", "1"), ("A", "1"), ("a", "2")]


def _pywsgi(part: str, loses: str) -> Reliance:
    return Reliance("gevent", f"gevent.pywsgi:{part}", loses, fallback=False)


# The private parts this module relies on (app/internals.py): without any of them captures would
# lose what they must keep, so the server refuses to start.
RELIANCES = (
    Reliance(
        PYTHON,
        "email.message:Message",
        "captured header names, order and duplicates could not be kept as sent",
        fallback=False,
        behaves=_keeps_header_list,
    ),
    _pywsgi(
        "WSGIHandler._headers",
        "headers with underscores in their names could pose as others in the environ",
    ),
    _pywsgi("WSGIHandler._handle_client_error", "malformed requests would not get a reason"),
    _pywsgi(
        "WSGIHandler._connection_upgrade_requested",
        "WebSocket connections could not be told from others when they end",
    ),
    _pywsgi("MAX_REQUEST_LINE", "long request lines would get 414"),
    Reliance(
        "gunicorn",
        "gunicorn.glogging:Logger.atoms_wrapper_class",
        "access-log lines would carry the control characters senders wrote",
        fallback=False,
    ),
)
