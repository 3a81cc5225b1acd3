"""Read a bin's captures in full from a Hookscope server, by sequence number, over its JSON API.

One keep-alive connection per reader (http.client: a relay calls this for every few captures,
and requests' per-call work would double what the relay spends). Errors come in two kinds:
``Unreachable`` (try again later: the server is restarting, the network dropped) and
``Refused`` (the server said no for good: no such bin, or the key does not open it).
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
from dataclasses import dataclass, field
from functools import cached_property
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

from app.inspect.provider_events import ProviderEvent, event_of

PAGE_LIMIT = 100  # captures a call asks for; the server also bounds a page's bytes
KEY_HELP = "give the bin's read key with --key, HOOKSCOPE_KEY or a share link's #key="


class Unreachable(Exception):
    """The server did not answer, or answered "later"; the message says what happened."""


class Refused(Exception):
    """The server refused for good; the message says why and what to do."""


@dataclass(frozen=True)
class Capture:
    """One captured request as stored: what a relay sends on and tail prints."""

    seq: int
    method: str
    path: str
    query_string: str
    content_type: str | None
    received_at: str
    rejected: bool
    headers: list[list[str]] = field(repr=False)
    body: bytes = field(repr=False)

    @cached_property
    def event(self) -> ProviderEvent | None:
        return event_of(self.headers, self.body)


@dataclass(frozen=True)
class Page:
    captures: list[Capture]
    more: bool  # the server left further captures for the next call
    last_seq: int


def capture_of(item: dict[str, Any]) -> Capture:
    """Build a capture from one entry of the full list's JSON."""
    return Capture(
        seq=item["seq"],
        method=item["method"],
        path=item["path"],
        query_string=item["query_string"],
        content_type=item["content_type"],
        received_at=item["received_at"],
        rejected=item["rejected"],
        headers=item["headers"],
        body=base64.b64decode(item["body_base64"], validate=True),
    )


def _user_agent() -> str:
    try:
        return f"hookscope/{metadata.version('hookscope')}"
    except metadata.PackageNotFoundError:
        return "hookscope"


class Feed:
    """Calls on one bin of one server, over one keep-alive connection."""

    def __init__(self, server: str, bin_id: str, key: str | None, timeout: float = 30.0) -> None:
        parts = urlsplit(server)
        self._https = parts.scheme == "https"
        self._netloc = parts.netloc
        self._base = f"{parts.path}/api/v1/bins/{bin_id}"
        self._timeout = timeout
        self._headers = {"Accept": "application/json", "User-Agent": _user_agent()}
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        self._conn: http.client.HTTPConnection | None = None

    def page(self, after: int, limit: int = PAGE_LIMIT) -> Page:
        """Return the captures after ``after``, oldest first."""
        answer = self._get(f"{self._base}/requests/full?after={after}&limit={limit}")
        try:
            captures = [capture_of(item) for item in answer["requests"]]
            return Page(captures, bool(answer["more"]), int(answer["last_seq"]))
        except (KeyError, TypeError, ValueError) as err:
            raise Unreachable(f"the server's answer was not a list of captures: {err!r}") from None

    def bin(self) -> dict[str, Any]:
        """Return the bin as the API describes it (``last_seq``, ``capture_url``, ...)."""
        return self._get(self._base)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = kind(self._netloc, timeout=self._timeout)
        return self._conn

    def _get(self, path: str) -> Any:
        # A kept-alive connection the server closed meanwhile fails on first use: try once more.
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request("GET", path, headers=self._headers)
                response = conn.getresponse()
                body = response.read()
            except (http.client.HTTPException, OSError) as err:
                self.close()
                if attempt == 1 and isinstance(err, _STALE):
                    continue
                raise Unreachable(f"{self._netloc} did not answer: {_describe(err)}") from None
            if response.getheader("Connection", "").lower() == "close":
                self.close()
            return _judge(response.status, body, self._netloc)
        raise AssertionError("unreachable")  # pragma: no cover


_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


def _judge(status: int, body: bytes, netloc: str) -> Any:
    """Return the JSON of a 200, or raise what the status means."""
    if status == 200:
        try:
            return json.loads(body)
        except ValueError:
            raise Unreachable(f"{netloc} answered 200 with something that is not JSON") from None
    code, message = _error(body)
    if status == 404 and code == "bin_not_found":
        raise Refused(f"{netloc}: no such bin, or this key does not open it ({KEY_HELP})")
    if status == 404:
        raise Refused(
            f"{netloc} has no such API: is it a Hookscope server, and as new as this command?"
        )
    if status in (408, 429) or status >= 500:
        raise Unreachable(f"{netloc} answered {status}{': ' + message if message else ''}")
    raise Refused(f"{netloc} answered {status}{': ' + message if message else ''}")


def _error(body: bytes) -> tuple[str, str]:
    """Return the error code and message of an API refusal ("" where there are none)."""
    try:
        answer = json.loads(body)
    except ValueError:
        return "", ""
    if not isinstance(answer, dict):
        return "", ""
    return str(answer.get("error", "")), str(answer.get("message", ""))


def _describe(err: BaseException) -> str:
    if isinstance(err, socket.timeout | TimeoutError):
        return "no answer in time"
    return str(err) or type(err).__name__
