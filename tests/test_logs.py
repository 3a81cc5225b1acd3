"""The worker's log lines: the capture line written straight through is the line logging writes."""

from __future__ import annotations

import base64
import io
import logging
import re
import socket
import time

import pytest
import requests

from app import logs

MESSAGE = "capture bin=%s method=%s path=%s size=%s status=%d ms=%.1f"
ARGS = ("b1", "POST", "/h/b1/x?y=1", "1024", 200, 1.25)


@pytest.fixture
def loggers():
    """A parent with a LineHandler and no propagation, as the worker sets "hookscope" up."""
    parent = logging.getLogger("test_logs_parent")
    child = logging.getLogger("test_logs_parent.capture")
    stream = io.StringIO()
    handler = logs.LineHandler(stream)
    parent.addHandler(handler)
    parent.setLevel(logging.INFO)
    parent.propagate = False
    yield parent, child, handler, stream
    parent.removeHandler(handler)
    parent.setLevel(logging.NOTSET)
    parent.propagate = True
    child.filters.clear()
    handler.filters.clear()


def alone(parent: logging.Logger, handler: logs.LineHandler) -> None:
    """Take off the capture handlers pytest puts on every logger that does not propagate."""
    parent.handlers[:] = [handler]


def frozen(monkeypatch, at: float) -> None:
    monkeypatch.setattr(time, "time", lambda: at)


# Times whose milliseconds logging truncates (999.6 is 999, never 1000).
@pytest.mark.parametrize("at", [1_795_000_000.0, 1_795_000_000.9996, 1_795_000_059.0507])
def test_the_short_way_writes_what_logging_would(loggers, monkeypatch, at):
    parent, child, handler, stream = loggers
    alone(parent, handler)
    frozen(monkeypatch, at)
    child.info(MESSAGE, *ARGS)
    through_logging = stream.getvalue()
    stream.truncate(0)
    stream.seek(0)

    def no_record(*_, **__):
        raise AssertionError("the short way made a LogRecord")

    monkeypatch.setattr(child, "makeRecord", no_record)
    logs.info(child, MESSAGE, *ARGS)
    assert stream.getvalue() == through_logging
    assert re.fullmatch(
        r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\] \[\d+\] \[INFO\] capture bin=b1 method=POST"
        r" path=/h/b1/x\?y=1 size=1024 status=200 ms=1\.2\n",
        through_logging,
    )


def test_a_new_second_is_formatted_anew(loggers, monkeypatch):
    parent, child, handler, stream = loggers
    alone(parent, handler)
    for at in (1_795_000_000.5, 1_795_000_001.25):
        frozen(monkeypatch, at)
        logs.info(child, "tick")
    first, second = stream.getvalue().splitlines()
    assert first[1:24] == time.strftime("%Y-%m-%d %H:%M:%S,500", time.localtime(1_795_000_000))
    assert second[1:24] == time.strftime("%Y-%m-%d %H:%M:%S,250", time.localtime(1_795_000_001))


class Drop(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


def other_formatter(parent, child, handler):
    handler.setFormatter(logging.Formatter("%(levelname)s|%(name)s|%(message)s"))


def handler_level(parent, child, handler):
    handler.setLevel(logging.WARNING)


def logger_level(parent, child, handler):
    parent.setLevel(logging.WARNING)


def filtered(parent, child, handler):
    child.addFilter(Drop())


def handler_filtered(parent, child, handler):
    handler.addFilter(Drop())


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (other_formatter, "INFO|test_logs_parent.capture|capture bin=b1"),
        (handler_level, ""),
        (logger_level, ""),
        (filtered, ""),
        (handler_filtered, ""),
    ],
)
def test_any_other_setup_takes_logging_path(loggers, setup, expected):
    parent, child, handler, stream = loggers
    alone(parent, handler)
    setup(parent, child, handler)
    logs.info(child, MESSAGE, *ARGS)
    assert stream.getvalue().startswith(expected)
    if not expected:
        assert stream.getvalue() == ""


def test_a_second_handler_sees_the_record(loggers, caplog):
    parent, child, handler, stream = loggers
    alone(parent, handler)
    parent.propagate = True  # caplog's handler is on the root logger
    with caplog.at_level(logging.INFO, logger="test_logs_parent.capture"):
        logs.info(child, MESSAGE, *ARGS)
    assert [r.getMessage() for r in caplog.records] == [MESSAGE % ARGS]
    assert stream.getvalue().endswith(f"[INFO] {MESSAGE % ARGS}\n")


def test_gunicorn_worker_logs_one_line_per_capture(server):
    bin_id = server.create_bin()["id"]
    response = requests.post(f"{server.url}/h/{bin_id}/a%20b?x=1", data=b"12345", timeout=10)
    assert response.status_code == 200
    pattern = re.compile(
        r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\] \[\d+\] \[INFO\] capture bin="
        + bin_id
        + r" method=POST path=/h/"
        + bin_id
        + r"/a%20b\?x=1 size=5 status=200 ms=\d+\.\d"
    )
    deadline = time.monotonic() + 5
    while not pattern.search(server.log_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(pattern.findall(server.log_text())) == 1


def test_access_line_escapes_what_the_sender_wrote(server):
    """gunicorn's access line (pages, API) shows the sender's text escaped, as capture lines do."""
    marker = f"m{time.monotonic_ns()}"
    user = base64.b64encode(b"ev\r\nil\x1b[2J:pw").decode()
    sent = (
        f"GET /healthz?{marker}=\x1b[31mred HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f'User-Agent: "agent\x1b]0;title\x07\x7f\r\nReferer: http://x/\x1b[1m\r\n'
        f"Authorization: Basic {user}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(sent.encode("latin-1"))
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 200 ")
    deadline = time.monotonic() + 5
    while marker.encode() not in server.log_path.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = server.log_path.read_bytes()
    [line] = [line for line in log.split(b"\n") if marker.encode() in line]
    assert line.isascii()
    assert not any(byte < 0x20 or byte == 0x7F for byte in line), line
    # One line, nothing of the sender's left raw: the user name's CR LF did not split it.
    assert log.count(marker.encode()) == 1
    text = line.decode()
    assert f'"GET /healthz?{marker}=\\x1b[31mred HTTP/1.1" 200 ' in text
    assert '"http://x/\\x1b[1m" "\\"agent\\x1b]0;title\\x07\\x7f"' in text
    assert " - ev\\r\\nil\\x1b[2J [" in text
