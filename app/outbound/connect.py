"""Resolve a target once, check every address, and connect to a checked address itself.

Connecting to the name would resolve it again, and a DNS answer that changed in between
(rebinding) would reach an address nobody checked. The socket and ssl modules are looked up
when called, so gevent's monkey-patching applies inside the server and plain threads elsewhere.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Sequence

from . import guard
from .target import Target

CONNECT_TIMEOUT_SETTING = "HOOKSCOPE_OUTBOUND_CONNECT_TIMEOUT_SECONDS"

# (host, port) -> the addresses to try, in order. The system's by default; tests inject one.
Resolver = Callable[[str, int], Sequence[str]]


class Failure(Exception):
    """An outbound call that could not be made or finished: a code and a plain message."""

    def __init__(self, code: str, message: str, address: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.address = code, message, address


@functools.cache
def default_tls() -> ssl.SSLContext:
    """Return the shared TLS context: system CAs, certificates and host names checked.

    Made on first use, not at import, so that it is gevent's inside a patched worker; made
    once, because loading the CA store takes tens of milliseconds.
    """
    return ssl.create_default_context()


def resolve_host(host: str, port: int) -> list[str]:
    """Return the addresses the system resolver gives for a host, in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def checked_addresses(target: Target, allow: guard.AllowList, resolve: Resolver) -> list[str]:
    """Resolve the host once and judge every address; refuse if any one is refused.

    Refusing the whole name (rather than skipping its private answers) leaves no way to mix a
    public and a private answer and hope the connection picks the private one.
    """
    verdict = guard.check_host(target.host, allow)
    if verdict is not None:
        if not verdict.allowed:
            code = "bad_url" if verdict.reason == "bad_host" else "target_forbidden"
            raise Failure(code, verdict.message, verdict.target)
        return [verdict.target]
    try:
        addresses = [str(ipaddress.ip_address(a)) for a in resolve(target.host, target.port)]
    except (OSError, UnicodeError, ValueError) as err:
        raise Failure(
            "dns_failed", f"{target.host} could not be resolved: {describe(err)}"
        ) from None
    if not addresses:
        raise Failure("dns_failed", f"{target.host} resolved to no address")
    for address in addresses:
        verdict = guard.check_address(address, allow, host=target.host)
        if not verdict.allowed:
            raise Failure("target_forbidden", verdict.message, address)
    return addresses


def open_connection(
    target: Target,
    addresses: list[str],
    connect_timeout: float,
    deadline: float,
    tls: ssl.SSLContext | None = None,
) -> tuple[socket.socket, str]:
    """Connect to the first of the checked addresses that answers; TLS for https."""
    failure = Failure("connect_failed", f"{target.host}: no address to connect to")
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(_budget(connect_timeout, deadline))
        try:
            sock.connect((address, target.port))
        except TimeoutError:
            failure = Failure(
                "connect_timeout",
                f"{address} port {target.port} did not accept a connection within "
                f"{connect_timeout:g} s ({CONNECT_TIMEOUT_SETTING})",
                address,
            )
        except OSError as err:
            failure = Failure(
                "connect_failed", f"{address} port {target.port}: {describe(err)}", address
            )
        else:
            if target.scheme == "https":
                context = tls or default_tls()
                return _tls(sock, target, context, address, connect_timeout, deadline), address
            return sock, address
        sock.close()
    raise failure


def _tls(
    sock: socket.socket,
    target: Target,
    context: ssl.SSLContext,
    address: str,
    connect_timeout: float,
    deadline: float,
) -> socket.socket:
    """Wrap a connection in TLS for the URL's host name: SNI and certificate both check it."""
    sock.settimeout(_budget(connect_timeout, deadline))
    try:
        return context.wrap_socket(sock, server_hostname=target.host)
    except ssl.SSLCertVerificationError as err:
        failure = Failure(
            "tls_failed", f"{target.host}'s certificate is not valid: {err.verify_message}"
        )
    except TimeoutError:
        failure = Failure(
            "connect_timeout",
            f"{address} did not complete TLS within {connect_timeout:g} s "
            f"({CONNECT_TIMEOUT_SETTING})",
        )
    except (ssl.SSLError, OSError) as err:
        failure = Failure("tls_failed", f"TLS with {target.host} failed: {describe(err)}")
    sock.close()
    failure.address = address
    raise failure


def _budget(connect_timeout: float, deadline: float) -> float:
    return max(min(connect_timeout, deadline - time.monotonic()), 0.001)


def describe(err: BaseException) -> str:
    """Say what went wrong in a few words."""
    return str(err) or type(err).__name__
