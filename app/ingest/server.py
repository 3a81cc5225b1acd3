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
* the socket where simple-websocket looks for it, for Socket.IO's WebSocket transport;
* no access-log line for captures, which log one structured line of their own, and on the
  other lines everything the sender wrote escaped as the capture line escapes it;
* the Date header formatted once a second, not for every response;
* a short response (every capture's answer) sent with one ``send``: pywsgi sends the head and the
  body separately, through a ``sendall`` that also asks the kernel for the socket's buffer size
  each time (three system calls where one does; 12% of the worker's time under ingest load).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import Message
from typing import Any

import gevent
from gevent import pywsgi
from gunicorn.glogging import SafeAtoms
from gunicorn.workers.ggevent import GeventPyWSGIWorker, PyWSGIHandler

from app.domain.paths import CAPTURE_PREFIX
from app.ingest.environ import ABANDON, BODY_TIMER, RAW_HEADERS
from app.runtime.logs import printable

# Header limits: generous for webhook senders (some send 60+ headers and multi-kilobyte
# signatures), small enough that a request's head stays a few MiB at most.
MAX_HEADER_FIELDS = 200
MAX_HEADER_LINE = 16 * 1024
# pywsgi answers 414 past this many characters in the request line (8 KiB by default).
pywsgi.MAX_REQUEST_LINE = 64 * 1024
# A connection must deliver a request's line and headers within this many seconds of starting to
# wait for them (idle keep-alive time included), or it is closed: slow-header senders hold nothing.
# The worker sets it from HOOKSCOPE_HEAD_TIMEOUT_SECONDS.
HEAD_TIMEOUT = 15
# Responses with a body up to this size go out with their head in one send.
SMALL_RESPONSE = 16 * 1024


_HEAD_WITH_BODY = "HEAD\x00"
# method SP request-target SP HTTP-version, nothing more (RFC 9112, 3); pywsgi alone would also
# take runs of blanks, tabs and HTTP/0.9's version-less line.
_REQUEST_LINE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+ [^\s]+ HTTP/[0-9]\.[0-9]")


class HeadTimeout(OSError):
    """The request line or headers did not arrive in time (an OSError: pywsgi closes quietly)."""


class HeadTooLarge(ValueError):
    """The request's header section is over our limits: answered 431, connection closed."""


# Requests refused for how their head is written, before the app runs (RFC 9112, 5 and 6; RFC 9110,
# 5.5 and 8.6): each could be read one way here and another way by a proxy in front, which then
# takes the rest of the body for another request (request smuggling), so the connection is closed
# after the answer. reason: (status line, what the sender is told).
REFUSED_HEADS: dict[str, tuple[bytes, str]] = {
    "name_not_token": (
        b"400 Bad Request",
        "header name {name} is not a token (letters, digits and !#$%&'*+-.^_`|~ only)",
    ),
    "bare_cr": (b"400 Bad Request", "header field {name} holds a CR that does not end its line"),
    "nul": (b"400 Bad Request", "header field {name} holds a NUL byte"),
    "incomplete": (b"400 Bad Request", "the header section ended before its empty line"),
    "length_repeated": (
        b"400 Bad Request",
        "Content-Length is sent more than once ({values}); send it once",
    ),
    "length_invalid": (
        b"400 Bad Request",
        "Content-Length {value} is not a byte count (decimal digits only, at most 18)",
    ),
    "length_and_coding": (
        b"400 Bad Request",
        "Content-Length and Transfer-Encoding are both sent; send one (RFC 9112, 6.1)",
    ),
    "coding_http10": (
        b"400 Bad Request",
        "Transfer-Encoding on an HTTP/1.0 request (RFC 9112, 6.1); send Content-Length instead",
    ),
    "coding_empty": (b"400 Bad Request", "Transfer-Encoding {value} has an empty coding"),
    "chunked_not_final": (
        b"400 Bad Request",
        "Transfer-Encoding {value} does not end with chunked (RFC 9112, 6.3)",
    ),
    "chunked_repeated": (
        b"400 Bad Request",
        "Transfer-Encoding {value} applies chunked more than once (RFC 9112, 7)",
    ),
    "coding_unknown": (
        b"501 Not Implemented",
        "transfer coding {coding} is not implemented; send the body with Content-Length or with"
        " Transfer-Encoding: chunked alone (a Content-Encoding such as gzip is stored as sent)",
    ),
}


class BadHead(ValueError):
    """The request's head is refused for a reason in ``REFUSED_HEADS``; the connection closes."""

    def __init__(self, reason: str, **details: str) -> None:
        self.status, template = REFUSED_HEADS[reason]
        # Sender-written details are shown quoted and escaped (repr), cut to 60 characters.
        super().__init__(template.format(**{k: repr(v[:60]) for k, v in details.items()}))
        self.reason = reason


class Headers(Message):
    """The parsed header section, in the shape pywsgi and gunicorn read (``email.message``)."""

    status = ""
    # The Content-Length and Transfer-Encoding fields, as (lowercase name, value), when any.
    framing: list[tuple[str, str]] | None = None

    def get(self, name: str, failobj: Any = None) -> Any:
        # email.message's get() also passes the value through its policy, which only changes
        # values with surrogates (never in Latin-1 text); pywsgi asks ~8 times a request.
        name = name.lower()
        for key, value in self._headers:
            if key.lower() == name:
                return value
        return failobj

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self.get(name, default)

    @property
    def headers(self) -> list[str]:
        return [f"{name}: {value}\r\n" for name, value in self._headers]

    @property
    def typeheader(self) -> str | None:
        return self.get("content-type")


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_FRAMING_FIELDS = frozenset(("content-length", "transfer-encoding"))
# Field names seen before, each valid token mapped to its lowercase form: the same few dozen
# names arrive on every request, so one dict lookup stands for the token check and lower().
# Bounded: names past the bound (or long ones) take the regular expression every time.
_KNOWN_NAMES: dict[str, str] = {}
KNOWN_NAMES_MAX = 2048
KNOWN_NAME_LENGTH = 64


def _field_name(name: str) -> str:
    """Check a field name is a token (RFC 9110, 5.1) and give it in lowercase."""
    if not _TOKEN.fullmatch(name):
        # Whitespace before the colon lands here too, which RFC 9112 (5.1) says to refuse.
        raise BadHead("name_not_token", name=name)
    lowered = name.lower()
    if len(_KNOWN_NAMES) < KNOWN_NAMES_MAX and len(name) <= KNOWN_NAME_LENGTH:
        _KNOWN_NAMES[name] = lowered
    return lowered


def read_headers(rfile: Any) -> Headers:
    """Read header lines up to the empty line, within our limits; names and values kept as sent."""
    found = Headers()
    pairs = found._headers
    lines = []
    while True:
        line = rfile.readline(MAX_HEADER_LINE + 1)
        if len(line) > MAX_HEADER_LINE:
            raise HeadTooLarge(f"a header line is longer than {MAX_HEADER_LINE} bytes")
        if line == b"\r\n" or line == b"\n":
            break
        if not line:
            # The sender closed before the empty line (a last line cut short ends here too, on
            # the next read): what arrived is not a whole request.
            raise BadHead("incomplete")
        if line[:1] in (b" ", b"\t"):
            # Folded continuation lines (obs-fold) are a request-smuggling device: refuse them.
            raise ValueError("folded header lines are not accepted")
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon:
            raise ValueError(f"malformed header line {line[:100]!r}")
        lowered = _KNOWN_NAMES.get(name) or _field_name(name)
        if len(pairs) >= MAX_HEADER_FIELDS:
            raise HeadTooLarge(f"more than {MAX_HEADER_FIELDS} header fields")
        value = value.strip(" \t\r\n")
        pairs.append((name, value))
        lines.append(line)
        if lowered in _FRAMING_FIELDS:
            if found.framing is None:
                found.framing = []
            found.framing.append((lowered, value))
    # RFC 9110 (5.5): a CR or NUL in a value must be refused or replaced; a request bin keeps what
    # was sent, so it refuses. Other control characters (ESC, DEL...) are kept, stored as sent and
    # escaped wherever they are shown. An LF only ever ends a line, so every CR but the ones
    # ending lines is a bare CR. Checked once over the whole head, in three C-level scans (find
    # of one byte is memchr; "in" is twice as slow).
    head = b"".join(lines)
    if head.find(b"\0") != -1 or head.count(b"\r") != head.count(b"\r\n"):
        _refuse_control_characters(lines)
    return found


def _refuse_control_characters(lines: list[bytes]) -> None:
    """Name the first header field that holds a NUL or a bare CR."""
    for line in lines:
        name = line.decode("latin-1").partition(":")[0]
        if b"\0" in line:
            raise BadHead("nul", name=name)
        if line.count(b"\r") != line.count(b"\r\n"):
            raise BadHead("bare_cr", name=name)


def check_framing(version: str, fields: list[tuple[str, str]]) -> None:
    """Refuse a body whose end could be read two ways, or that is coded in a way we do not decode.

    ``fields`` are the request's Content-Length and Transfer-Encoding fields, as (lowercase name,
    value). What passes has exactly one of them, and pywsgi frames it as everyone else would: one
    Content-Length of plain digits, or one Transfer-Encoding whose value is ``chunked``.
    """
    if len(fields) == 1:
        name, value = fields[0]
        if name == "content-length" and value.isdigit() and value.isascii() and len(value) <= 18:
            return  # the common case, in a few C-level calls
    lengths = [value for name, value in fields if name == "content-length"]
    codings = [value for name, value in fields if name == "transfer-encoding"]
    if codings:
        if version in ("HTTP/1.0", "HTTP/0.9"):
            raise BadHead("coding_http10")
        if lengths:
            raise BadHead("length_and_coding")
        _check_codings(", ".join(codings))
    elif len(lengths) > 1 or "," in lengths[0]:
        # RFC 9110 (8.6) lets a recipient take a repeated identical value ("5, 5", or two lines of
        # 5) as one. We refuse it like any other repeat: it only comes from a broken sender or a
        # proxy that merged two messages' fields, nginx and Node refuse it too, and a bin is where
        # a sender is tried out, so it should hear what such receivers would tell it.
        raise BadHead("length_repeated", values=", ".join(lengths))
    else:
        raise BadHead("length_invalid", value=lengths[0])


def _check_codings(value: str) -> None:
    """Refuse any Transfer-Encoding but ``chunked`` alone (the message says what is wrong)."""
    codings = [coding.strip(" \t").lower() for coding in value.split(",")]
    if codings == ["chunked"]:
        return
    if "" in codings:
        # RFC 9110 (5.6.1) has empty list elements ignored, but pywsgi would then not see chunked.
        raise BadHead("coding_empty", value=value)
    if codings[-1] != "chunked":
        raise BadHead("chunked_not_final", value=value)
    if codings.count("chunked") > 1:
        raise BadHead("chunked_repeated", value=value)
    raise BadHead("coding_unknown", coding=next(c for c in codings if c != "chunked"))


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
            or not _TOKEN.fullmatch(name)
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


# pywsgi's get_environ makes each request's body stream from the module's Input: make it ours
# rather than replace the one it made (a second object for every request).
pywsgi.Input = Body


class _DateHeader:
    """pywsgi's ``format_date_time``, formatted once a second instead of for every response."""

    def __init__(self, format_date_time: Any) -> None:
        self._format = format_date_time
        self._second = -1
        self._value = b""

    def __call__(self, timestamp: float) -> bytes:
        second = int(timestamp)
        if second != self._second:
            self._second, self._value = second, self._format(second)
        return self._value


pywsgi.format_date_time = _DateHeader(pywsgi.format_date_time)


def _refusal(status: bytes, text: bytes) -> bytes:
    """A complete response for a request refused before the app saw it; the connection closes."""
    return (
        b"HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (status, len(text), text)
    )


class Handler(PyWSGIHandler):
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

    def _write_with_headers(self, data: bytes) -> None:
        if self.response_use_chunked or len(data) > SMALL_RESPONSE:
            super()._write_with_headers(data)
            return
        # pywsgi's own method, but the head and the body in one buffer.
        self.headers_sent = True
        self.finalize_headers()
        towrite = bytearray(b"HTTP/1.1 ")
        towrite += self.status
        towrite += b"\r\n"
        for header, value in self.response_headers:
            towrite += header
            towrite += b": "
            towrite += value
            towrite += b"\r\n"
        towrite += b"\r\n"
        towrite += data
        self._sendall(towrite)

    def _sendall(self, data: bytes) -> None:
        # One send() takes a short response whole; sendall() only for what it leaves over.
        try:
            sent = self.socket.send(data)
            if sent < len(data):
                self.socket.sendall(memoryview(data)[sent:])
        except OSError as ex:
            self.status = f"socket error: {ex}"
            if self.code > 0:
                self.code = -self.code
            raise
        self.response_length += len(data)

    def log_request(self) -> None:
        # Captures log their own line; a request refused before it had an environ has its line in
        # the error log (_handle_client_error), and gunicorn's access line needs the environ.
        if self.environ is not None and not (self.path or "").startswith(CAPTURE_PREFIX):
            super().log_request()


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
