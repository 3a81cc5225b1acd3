"""HOOKSCOPE_LOG_FORMAT=json: every line one JSON object, the capture line's fields as keys."""

from __future__ import annotations

import io
import json
import logging
import socket
import time

import pytest
import requests

from app import logs
from app.config import ConfigError, from_environment, server_settings

HOSTILE_PATH = '/x\x1b[31m"q\\ \u00e9\r\n'


@pytest.fixture
def json_logger():
    """A parent with a JsonLineHandler alone and no propagation, as the worker sets it up."""
    parent = logging.getLogger("test_json_logs")
    child = logging.getLogger("test_json_logs.capture")
    stream = io.StringIO()
    handler = logs.JsonLineHandler(stream)
    parent.handlers[:] = [handler]
    parent.setLevel(logging.INFO)
    parent.propagate = False
    yield parent, child, handler, stream
    parent.handlers[:] = []
    parent.setLevel(logging.NOTSET)
    parent.propagate = True
    handler.filters.clear()


class Keep(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return True


def test_the_short_way_writes_what_logging_writes(json_logger, monkeypatch):
    parent, child, handler, stream = json_logger
    monkeypatch.setattr(time, "time", lambda: 1_795_000_000.25)
    args = ("b1", "POST", HOSTILE_PATH, "1024", 200, 1.25)
    logs.capture(child, *args[:5], 0.00125)
    short = stream.getvalue()
    stream.truncate(0), stream.seek(0)
    handler.addFilter(Keep())  # any filter: logging's own path
    logs.capture(child, *args[:5], 0.00125)
    through_logging = stream.getvalue()
    assert short.count("\n") == through_logging.count("\n") == 1
    assert short.isascii() and through_logging.isascii()
    assert json.loads(short) == json.loads(through_logging)
    assert json.loads(short) == {
        "time": "2026-11-18T11:06:40.250Z",
        "pid": json.loads(short)["pid"],
        "level": "INFO",
        "logger": "test_json_logs.capture",
        "message": "capture",
        "bin": "b1",
        "method": "POST",
        "path": HOSTILE_PATH,  # as sent: JSON's escaping keeps it on its line
        "size": 1024,
        "status": 200,
        "ms": 1.2,
    }


def test_other_lines_and_exceptions_are_json_too(json_logger):
    parent, child, _, stream = json_logger
    logs.info(child, "worker [%d] serving", 42)
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        child.exception("it failed: %s", "why")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "worker [42] serving" and first["level"] == "INFO"
    assert second["message"] == "it failed: why" and second["level"] == "ERROR"
    assert "ValueError: boom\nsecond line" in second["exception"]


def test_long_values_are_cut(json_logger):
    _, child, _, stream = json_logger
    logs.capture(child, "b", "GET", "/" + "a" * 5000, None, 404, 0.001)
    line = json.loads(stream.getvalue())
    assert line["path"] == "/" + "a" * (logs.LIMIT - 1) + "..."
    assert line["size"] is None


@pytest.mark.parametrize("value", ["xml", "JSONL"])
def test_an_unknown_format_is_refused_naming_the_variable(tmp_path, value):
    env = {"HOOKSCOPE_LOG_FORMAT": value}
    with pytest.raises(ConfigError, match="HOOKSCOPE_LOG_FORMAT"):
        from_environment(str(tmp_path), env)
    with pytest.raises(ConfigError, match="HOOKSCOPE_LOG_FORMAT"):
        server_settings(env)


def test_the_server_writes_nothing_but_json_lines(fresh_server):
    fresh_server.env["HOOKSCOPE_LOG_FORMAT"] = "json"
    server = fresh_server.start()
    bin_ = server.create_bin()
    raw_path = f'/h/{bin_["id"]}/a%20b?x=\x1b[31m"q\\'
    sent = (
        f"POST {raw_path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n"
        "Connection: close\r\n\r\nhello"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(sent.encode("latin-1"))
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
    agent = 'agent "\x1b]0;title\x07 \u00e9'
    page = requests.get(server.url + "/healthz", headers={"User-Agent": agent.encode()})
    assert page.status_code == 200
    time.sleep(0.2)
    server.stop()

    lines = server.log_path.read_bytes().decode().splitlines()
    assert all(line.isascii() for line in lines)
    parsed = [json.loads(line) for line in lines]  # every line, the master's included
    assert all({"time", "pid", "level", "logger", "message"} <= set(p) for p in parsed)
    [captured] = [p for p in parsed if p["message"] == "capture"]
    assert captured["bin"] == bin_["id"]
    assert captured["method"] == "POST"
    assert captured["path"] == raw_path
    assert captured["size"] == 5 and captured["status"] == 200
    assert isinstance(captured["ms"], float)
    sent_agent = agent.encode().decode("latin-1")  # the bytes as WSGI hands them on
    [access] = [p for p in parsed if p["message"] == "access" and p["user_agent"] == sent_agent]
    assert access["path"] == "/healthz"
    assert access["status"] == 200 and access["method"] == "GET"
    messages = [p["message"] for p in parsed]
    assert any(m.startswith("Starting gunicorn") for m in messages)  # gunicorn's master
    assert any(m.startswith("Running upgrade") for m in messages)  # the migrations
    assert any(m.endswith("] serving") for m in messages)  # ours
