"""Send one request out of Hookscope (replay, auto-forward) where the guard allows it.

Each hop is parsed (target.py), resolved once with every address checked and connected to by
address (connect.py), then written byte for byte and its answer read within the deadline
(wire.py). Redirects are followed only when asked, each hop checked again. With a pool
(pool.py; auto-forward has one), a connection that may stay open is kept for the next call to
the same checked address.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urljoin

from . import guard, wire
from .connect import (
    CONNECT_TIMEOUT_SETTING,
    Failure,
    Resolver,
    checked_addresses,
    describe,
    open_connection,
    resolve_host,
)
from .pool import Pool
from .target import BadURL, Target, parse_url

__all__ = [
    "CONNECT_TIMEOUT_SETTING",
    "MAX_RESPONSE_SETTING",
    "REDIRECTS_SETTING",
    "TIMEOUT_SETTING",
    "Hop",
    "Limits",
    "Result",
    "Timings",
    "resolve_host",
    "send",
]

TIMEOUT_SETTING = "HOOKSCOPE_OUTBOUND_TIMEOUT_SECONDS"
MAX_RESPONSE_SETTING = "HOOKSCOPE_OUTBOUND_MAX_RESPONSE_BYTES"
REDIRECTS_SETTING = "HOOKSCOPE_OUTBOUND_MAX_REDIRECTS"

REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Sent on to a redirect's target only when it is the same origin (scheme, host and port).
_CREDENTIALS = frozenset({"authorization", "cookie", "proxy-authorization"})


@dataclass(frozen=True)
class Limits:
    """Bounds on every outbound call."""

    connect_timeout: float = 5.0  # seconds for TCP and TLS set-up, per address tried
    timeout: float = 30.0  # seconds for the whole call, redirects included
    max_response_bytes: int = 1024 * 1024  # body kept; the rest is dropped, truncated=True
    max_redirects: int = 0  # 0: a 3xx is the answer


@dataclass(frozen=True)
class Timings:
    """Milliseconds from the start of the call."""

    resolved_ms: float = 0.0  # the last hop's addresses known
    connected_ms: float = 0.0  # its TCP (and TLS) connection up
    headers_ms: float = 0.0  # its response's status line and headers in
    total_ms: float = 0.0


@dataclass(frozen=True)
class Hop:
    """A redirect that was followed."""

    url: str
    address: str
    status: int


@dataclass(frozen=True)
class Result:
    """What came back, or why nothing did (``error`` is then a code and ``message`` says why).

    Error codes: target_forbidden (answer 422), bad_url, bad_request, dns_failed,
    connect_failed, connect_timeout, tls_failed, timeout, connection_lost, bad_response.
    """

    error: str | None
    message: str
    url: str  # the URL of the last hop
    address: str | None = None  # the address connected to, for the last hop
    status: int | None = None
    reason: str = ""
    headers: list[list[str]] = field(default_factory=list)
    body: bytes = b""
    truncated: bool = False
    redirects: tuple[Hop, ...] = ()
    timings: Timings = Timings()


def send(
    method: str,
    url: str,
    headers: Sequence[Sequence[str]],
    body: bytes = b"",
    *,
    allow: guard.AllowList,
    limits: Limits = Limits(),
    resolve: Resolver = resolve_host,
    tls: ssl.SSLContext | None = None,
    pool: Pool | None = None,
) -> Result:
    """Send a request where the guard allows, following redirects up to the limit.

    Headers go out in the given order with duplicates, as UTF-8; Host and Content-Length (or
    chunked framing) are set from the URL and the body, and nothing else is added. Following a
    redirect, 303 (and 301/302 after a POST) becomes a body-less GET, 307/308 keep method and
    body, and credentials (Authorization, Cookie) are dropped when it leaves the origin.
    """
    start = time.monotonic()
    deadline = start + limits.timeout
    hops: list[Hop] = []
    while True:
        try:
            try:
                target = parse_url(url)
            except BadURL as err:
                raise Failure("bad_url", str(err)) from None
            reply, address, timings = _exchange(
                method, target, headers, body, allow, limits, resolve, tls, start, deadline, pool
            )
        except Failure as failure:
            message = failure.message
            if hops:
                message = f"redirect {len(hops)} to {url}: {message}"
            return Result(
                failure.code,
                message,
                url,
                failure.address,
                redirects=tuple(hops),
                timings=Timings(total_ms=_ms(start)),
            )
        location = _header(reply.headers, "location")
        if reply.status in REDIRECTS and location and len(hops) < limits.max_redirects:
            hops.append(Hop(url, address, reply.status))
            next_url = urljoin(url, location)
            method, headers, body = _redirected(reply.status, method, headers, body)
            following = _parse(next_url)
            if following is None or following.origin != target.origin:
                headers = [h for h in headers if h[0].lower() not in _CREDENTIALS]
            url = next_url
            continue
        message = ""
        if reply.truncated:
            message = (
                f"the response body was cut at {limits.max_response_bytes} bytes "
                f"({MAX_RESPONSE_SETTING})"
            )
        return Result(
            None,
            message,
            url,
            address,
            reply.status,
            reply.reason,
            reply.headers,
            reply.body,
            reply.truncated,
            tuple(hops),
            Timings(*timings, total_ms=_ms(start)),
        )


def _exchange(
    method: str,
    target: Target,
    headers: Sequence[Sequence[str]],
    body: bytes,
    allow: guard.AllowList,
    limits: Limits,
    resolve: Resolver,
    tls: ssl.SSLContext | None,
    start: float,
    deadline: float,
    pool: Pool | None,
) -> tuple[wire.Reply, str, tuple[float, float, float]]:
    try:
        request = wire.request_bytes(method, target.target, target.authority, headers, body)
    except wire.RequestError as err:
        raise Failure("bad_request", str(err)) from None
    addresses = checked_addresses(target, allow, resolve)
    resolved = _ms(start)

    def over(sock: socket.socket, address: str, reused: bool) -> tuple[wire.Reply, str, tuple]:
        connected = _ms(start)
        kept = False
        try:
            reply, headers_at = _answer(
                sock, address, request, method, target, limits, deadline, reused
            )
            if pool is not None and reply.keep_alive:
                key = pool.key(target.scheme, target.host, target.port, address, tls)
                pool.give_back(key, sock)
                kept = True
        finally:
            if not kept:
                sock.close()
        return reply, address, (resolved, connected, round((headers_at - start) * 1000, 3))

    idle = pool.take(target.scheme, target.host, target.port, addresses, tls) if pool else None
    if idle is not None:
        try:
            return over(*idle, reused=True)
        except wire.Stale:
            pass  # closed by the server while idle, nothing read: once more on a new one
    sock, address = open_connection(target, addresses, limits.connect_timeout, deadline, tls)
    return over(sock, address, reused=False)


def _answer(
    sock: socket.socket,
    address: str,
    request: bytes,
    method: str,
    target: Target,
    limits: Limits,
    deadline: float,
    reused: bool,
) -> tuple[wire.Reply, float]:
    """Send the request and read its answer, each way it can fail said as a Failure."""
    try:
        return wire.exchange(
            sock, request, method, deadline, limits.max_response_bytes, reused=reused
        )
    except TimeoutError:
        raise Failure(
            "timeout",
            f"{target.host} gave no full answer within {limits.timeout:g} s ({TIMEOUT_SETTING})",
            address,
        ) from None
    except http.client.RemoteDisconnected:
        raise Failure(
            "connection_lost", f"{address} closed the connection without answering", address
        ) from None
    except http.client.HTTPException as err:
        raise Failure(
            "bad_response", f"{target.host} did not answer in HTTP/1.x: {describe(err)}", address
        ) from None
    except OSError as err:
        raise Failure(
            "connection_lost", f"the connection to {address} failed: {describe(err)}", address
        ) from None


def _parse(url: str) -> Target | None:
    try:
        return parse_url(url)
    except BadURL:
        return None


def _redirected(
    status: int, method: str, headers: Sequence[Sequence[str]], body: bytes
) -> tuple[str, Sequence[Sequence[str]], bytes]:
    """Return the method, headers and body for a redirect's next request (RFC 9110, 15.4)."""
    if not ((status in (301, 302) and method == "POST") or (status == 303 and method != "HEAD")):
        return method, headers, body
    kept = [
        h
        for h in headers
        if not h[0].lower().startswith("content-") and h[0].lower() != "transfer-encoding"
    ]
    return "GET", kept, b""


def _header(headers: list[list[str]], name: str) -> str | None:
    return next((value for key, value in headers if key.lower() == name), None)


def _ms(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 3)
