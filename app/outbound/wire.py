"""Write one HTTP/1.1 request byte for byte and read its response within a deadline.

The request head is written here rather than through http.client's putrequest/putheader, which
add Host and Accept-Encoding, refuse a target that is not ASCII and encode values as Latin-1:
a captured request must go out as it came in. Only Host and the body's framing are set here.
Parsing the response is http.client's (a public class, HTTPResponse, over our own reader).
"""

from __future__ import annotations

import io
import re
import select
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http.client import HTTPResponse

TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# HTTP cannot carry these in a field value (RFC 9110, 5.5); everything else goes out as given.
_BAD_VALUE = re.compile(r"[\x00\r\n]")
_BAD_TARGET = re.compile(r"[\x00-\x20\x7f]")
_FRAMING = ("content-length", "transfer-encoding")


class RequestError(ValueError):
    """The request cannot be written as HTTP/1.1; the message says which part and why."""


class Stale(Exception):
    """A kept connection was found closed before any byte of the answer came back."""


@dataclass(frozen=True)
class Reply:
    status: int
    reason: str
    headers: list[list[str]]
    body: bytes
    truncated: bool
    # Read in full, nothing left over, and neither side asked to close: the connection may
    # carry the next request (pool.py).
    keep_alive: bool = False


def request_bytes(
    method: str, target: str, authority: str, headers: Sequence[Sequence[str]], body: bytes
) -> bytes:
    """Serialise a request: headers in the given order with duplicates; Host and framing set.

    Host takes the place of the first Host header (or goes first) with the URL's authority.
    With ``Transfer-Encoding: chunked`` the body goes as one chunk; otherwise Transfer-Encoding
    is dropped and Content-Length (in place of the first one, or last) gives the body's size.
    """
    if not TOKEN.fullmatch(method):
        raise RequestError(f"method {method!r} is not an HTTP token")
    if _BAD_TARGET.search(target):
        raise RequestError(f"the path {target!r} holds spaces or control characters")
    pairs = [(str(name), str(value)) for name, value in headers]
    for name, value in pairs:
        if not TOKEN.fullmatch(name):
            raise RequestError(f"header name {name!r} is not an HTTP token")
        if _BAD_VALUE.search(value):
            raise RequestError(f"header {name} holds a line break or NUL, which HTTP cannot carry")
    chunked = _is_chunked(pairs)
    out: list[tuple[str, str]] = []
    host_done = length_done = False
    for name, value in pairs:
        lower = name.lower()
        if lower == "host":
            if not host_done:
                out.append((name, authority))
            host_done = True
        elif lower == "content-length":
            if not chunked and not length_done:
                out.append((name, str(len(body))))
            length_done = True
        elif lower == "transfer-encoding" and not chunked:
            continue
        else:
            out.append((name, value))
    if not host_done:
        out.insert(0, ("Host", authority))
    if not chunked and not length_done and body:
        out.append(("Content-Length", str(len(body))))
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{n}: {v}\r\n" for n, v in out) + "\r\n"
    if chunked:
        body = (f"{len(body):x}\r\n".encode() + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
    return head.encode("utf-8") + body


def _is_chunked(pairs: list[tuple[str, str]]) -> bool:
    codings = [
        c.strip().lower()
        for name, value in pairs
        if name.lower() == "transfer-encoding"
        for c in value.split(",")
        if c.strip()
    ]
    return bool(codings) and codings[-1] == "chunked"


class _Unquiet(Exception):
    """Bytes (or EOF) wait on a connection whose answer was read in full."""


class _DeadlineReader(io.RawIOBase):
    """Read a socket, each read given only the time left before the deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline
        self.received = 0
        self.polling = False  # asked only whether anything is left: never wait, never read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int | None:  # noqa: ANN001 (a writable buffer)
        if self.polling:
            if quiet(self._sock):
                return None
            raise _Unquiet
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the deadline has passed")
        self._sock.settimeout(left)
        count = self._sock.recv_into(buffer)
        self.received += count
        return count


class _Reader(io.BufferedReader):
    """HTTPResponse closes its reader once the body is read; the connection outlives it."""

    def close(self) -> None:
        pass


class _Source:
    """What HTTPResponse asks of a socket: one reader, shared by interim and final responses."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.raw = _DeadlineReader(sock, deadline)
        self.file = _Reader(self.raw)

    def makefile(self, mode: str) -> io.BufferedReader:
        return self.file

    def drained(self) -> bool:
        """Tell whether nothing follows the answer, read or waiting to be read."""
        self.raw.polling = True
        try:
            return self.file.peek(1) == b""
        except _Unquiet:
            return False
        finally:
            self.raw.polling = False


def exchange(
    sock: socket.socket,
    request: bytes,
    method: str,
    deadline: float,
    max_bytes: int,
    *,
    reused: bool = False,
) -> tuple[Reply, float]:
    """Send a request and read its response; return it and when its status line arrived.

    Raises TimeoutError past the deadline, OSError when the connection fails and
    http.client.HTTPException when the answer is not HTTP; on a ``reused`` connection that
    turns out closed before any byte of the answer, Stale.
    """
    sock.settimeout(max(deadline - time.monotonic(), 0.001))
    sent = True
    try:
        sock.sendall(request)
    except (BrokenPipeError, ConnectionResetError):
        # A server may answer (413, 401) and close before taking the whole body: read that.
        sent = False
    source = _Source(sock, deadline)
    try:
        response = HTTPResponse(source, method=method)  # type: ignore[arg-type]
        response.begin()
    except ConnectionError:
        if reused and source.raw.received == 0:
            raise Stale from None
        raise
    # 100 Continue is skipped by begin(); other interim answers (102, 103) are too, here.
    while 102 <= response.status < 200:
        response = HTTPResponse(source, method=method)  # type: ignore[arg-type]
        response.begin()
    first_byte = time.monotonic()
    body = response.read(max_bytes + 1)
    truncated = len(body) > max_bytes
    keep_alive = sent and not truncated and _persists(response, method) and source.drained()
    response.close()
    headers = [[_text(name), _text(value)] for name, value in response.msg.items()]
    reply = Reply(
        status=response.status,
        reason=_text(response.reason),
        headers=headers,
        body=body[:max_bytes],
        truncated=truncated,
        keep_alive=keep_alive,
    )
    return reply, first_byte


def _persists(response: HTTPResponse, method: str) -> bool:
    """Tell whether the connection may carry another request (RFC 9112, 9.3 and 6.3): HTTP/1.1,
    no "close", and a body whose end is known without the connection's end. Only an answer
    read to its end gets here (not truncated), so nothing of it is left on the connection."""
    if response.version != 11:
        return False
    connection = ",".join(response.msg.get_all("Connection") or ()).lower()
    if "close" in (token.strip() for token in connection.split(",")):
        return False
    if method == "HEAD" or response.status in (204, 304):
        return True
    if response.getheader("Transfer-Encoding") is not None:
        return _is_chunked([("transfer-encoding", response.getheader("Transfer-Encoding"))])
    return response.getheader("Content-Length") is not None


def quiet(sock: socket.socket) -> bool:
    """Tell whether a connection has nothing to read now: no bytes, no EOF. Never waits."""
    try:
        if isinstance(sock, ssl.SSLSocket):
            if sock.pending():
                return False
            readable, _, _ = select.select([sock], [], [], 0)
            return not readable
        # A peek that may not wait (gevent's select costs far more than this, per call).
        timeout = sock.gettimeout()
        sock.settimeout(0)
        try:
            sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return True
        finally:
            sock.settimeout(timeout)
    except (OSError, ValueError):  # closed, or failed: not worth keeping
        return False
    return False  # a byte, or EOF


def _text(latin1: str) -> str:
    """Show header text (Latin-1 from http.client) as UTF-8 where its bytes are UTF-8."""
    if latin1.isascii():
        return latin1
    try:
        return latin1.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return latin1
