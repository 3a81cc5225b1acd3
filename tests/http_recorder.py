"""A loopback HTTP/1.1 server in a thread that keeps the exact bytes of every request it gets."""

from __future__ import annotations

import socket
import socketserver
import ssl
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


@dataclass
class Received:
    """One request as it arrived: the raw head, and the body with its framing undone."""

    head: bytes
    body: bytes
    method: bytes = b""
    target: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    connection: int = 0  # which connection it came on, counted from 1 (keep_alive=True)

    def header(self, name: bytes) -> bytes | None:
        return next((v for n, v in self.headers if n.lower() == name.lower()), None)


# (request) -> the answer: (status, headers, body), or the raw bytes to write, or an iterable of
# raw pieces written one at a time (a generator may wait between them).
Answer = tuple[int, list[tuple[str, str]], bytes] | bytes | Iterable[bytes]
Responder = Callable[[Received], Answer]


def ok(_request: Received) -> Answer:
    return 200, [("Content-Type", "text/plain")], b"ok"


class Recorder:
    """Serve on ``host`` (any port) until closed; ``requests`` holds what came in, in order."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        respond: Responder = ok,
        *,
        port: int = 0,
        tls: ssl.SSLContext | None = None,
        keep_alive: bool = False,
    ) -> None:
        """With ``keep_alive`` a connection takes request after request until the client closes
        it; an answer given as bytes closes it once written (b"": closed unanswered), one given
        as a tuple or as pieces keeps it open."""
        self.requests: list[Received] = []
        self.connections = 0
        self._keep_alive = keep_alive
        self.respond = respond
        self.closing = threading.Event()  # set by close(): answers that wait should stop
        self._tls = tls
        recorder = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                recorder._handle(self.request)

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_class = type(
            "Server",
            (socketserver.ThreadingTCPServer,),
            {"address_family": family, "daemon_threads": True, "allow_reuse_address": True},
        )
        self._server = server_class((host, port), Handler)
        self.port = self._server.server_address[1]
        self.host = host
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self._tls else 'http'}://{shown}:{self.port}"

    def close(self) -> None:
        self.closing.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _handle(self, sock: socket.socket) -> None:
        sock.settimeout(30)
        if self._tls:
            try:
                sock = self._tls.wrap_socket(sock, server_side=True)
            except (ssl.SSLError, OSError):
                return  # the client refused the certificate
        self.connections += 1
        connection = self.connections
        with sock.makefile("rb") as reader:
            while True:
                try:
                    received = _read_request(reader)
                except OSError:  # the client went away
                    break
                if received is None:
                    break
                received.connection = connection
                self.requests.append(received)
                answer = self.respond(received)
                closing = not self._keep_alive or isinstance(answer, bytes)
                if isinstance(answer, tuple):
                    status, headers, body = answer
                    head = f"HTTP/1.1 {status} X\r\n"
                    head += "".join(f"{n}: {v}\r\n" for n, v in headers)
                    head += f"Content-Length: {len(body)}\r\n"
                    head += "\r\n" if self._keep_alive else "Connection: close\r\n\r\n"
                    answer = head.encode("latin-1") + body
                for piece in [answer] if isinstance(answer, bytes) else answer:
                    sock.sendall(piece)
                if closing:
                    break
        if self._tls:
            sock.close()


def _read_request(reader) -> Received | None:  # noqa: ANN001
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = reader.readline(65536)
        if not line:
            return None
        head += line
    request_line, *lines = head[:-4].split(b"\r\n")
    method, target, _version = request_line.split(b" ", 2)
    headers = [tuple(part.strip() for part in line.split(b":", 1)) for line in lines]
    received = Received(head, b"", method, target, headers)  # type: ignore[arg-type]
    if (received.header(b"Transfer-Encoding") or b"").lower().endswith(b"chunked"):
        received.body = _dechunk(reader)
    else:
        received.body = reader.read(int(received.header(b"Content-Length") or 0))
    return received


def _dechunk(reader) -> bytes:  # noqa: ANN001
    body = b""
    while True:
        size = int(reader.readline().split(b";")[0], 16)
        if size == 0:
            while reader.readline() not in (b"\r\n", b""):
                pass
            return body
        body += reader.read(size)
        reader.readline()
