"""Responses sent as pywsgi would, with fewer system calls: what every capture's answer costs.

* The Date header is formatted once a second, not for every response.
* A short response (every capture's answer) goes out with one ``send``: pywsgi sends the head and
  the body separately, through a ``sendall`` that also asks the kernel for the socket's buffer
  size each time (three system calls where one does; 12% of the worker's time under ingest load).

app/ingest/server.py installs ``DateHeader`` in pywsgi, and its ``Handler`` is a
``OneSendHandler``.
"""

from __future__ import annotations

from typing import Any

from gunicorn.workers.ggevent import PyWSGIHandler

from app.internals import Reliance

# Responses with a body up to this size go out with their head in one send.
SMALL_RESPONSE = 16 * 1024


class DateHeader:
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


class OneSendHandler(PyWSGIHandler):
    """pywsgi's handler (gunicorn's), sending a short response's head and body in one buffer."""

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


# The private part this module relies on (app/internals.py).
RELIANCES = (
    Reliance(
        "gevent",
        "gevent.pywsgi:WSGIHandler._write_with_headers",
        "answers would bypass the server's own writer",
        fallback=False,
    ),
)
