"""How a URL's host is spelled: a host name, or an IPv4 address in one of its old forms. Pure.

inet_aton, and so getaddrinfo, reads 2130706433, 0x7f.1, 017700000001 and 127.1 as 127.0.0.1;
the URL standard reads them the same way, and other parsers read them as names. The guard
refuses them all, so that the address a user sees in a URL is the one it reaches.
"""

from __future__ import annotations

import ipaddress
import re

# A host name is letters, digits, '-' and '_' in dot-separated labels (after IDNA encoding).
_HOST_NAME = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)(\.(?!-)[a-z0-9_-]{1,63}(?<!-))*\.?")
# A label that resolvers read as part of an IPv4 address: decimal, octal (0...) or hex (0x...).
_NUMBER = re.compile(r"0x[0-9a-f]*|[0-9]+")


def is_host_name(name: str) -> bool:
    """Tell whether a lower-case ASCII name is a valid host name."""
    return bool(_HOST_NAME.fullmatch(name))


def legacy_ipv4(name: str) -> str | None:
    """Return what a numeric host means to inet_aton ("" if nothing), None for a real name.

    As in the URL standard, a host whose last label is a number is an IPv4 address, whatever
    its other labels are; only the four-decimal form is unambiguous.
    """
    labels = name.removesuffix(".").split(".")
    if not _NUMBER.fullmatch(labels[-1]):
        return None
    try:
        canonical = str(ipaddress.IPv4Address(name))
    except ValueError:
        canonical = None
    if canonical == name:
        return None
    parts = [_number(label) for label in labels]
    if len(parts) > 4 or any(p is None for p in parts):
        return ""
    *head, last = parts
    if any(p > 255 for p in head) or last >= 256 ** (5 - len(parts)):
        return ""
    value = sum(p << (8 * (3 - i)) for i, p in enumerate(head)) + last
    return str(ipaddress.IPv4Address(value))


def _number(label: str) -> int | None:
    if not _NUMBER.fullmatch(label):
        return None
    if label.startswith("0x"):
        return int(label[2:] or "0", 16)
    if len(label) > 1 and label.startswith("0"):
        return int(label, 8) if set(label) <= set("01234567") else None
    return int(label)
