"""Who is sending, as flood limits count it: an IPv4 address, or an IPv6 address's /64.

One IPv6 subscriber is routinely handed a whole /64 (18 quintillion addresses), so counting
each IPv6 address on its own let one sender step around every per-address limit.
"""

from __future__ import annotations

import ipaddress

PREFIX = 64


def sender_key(address: str | None) -> str:
    """Return the key a per-address limit counts ``address`` under."""
    if not address:
        return "-"
    if ":" not in address:
        return address  # IPv4, the common case: no parsing on the capture path
    try:
        ip = ipaddress.IPv6Address(address.split("%", 1)[0])
    except ValueError:
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)  # ::ffff:192.0.2.1 is the IPv4 sender 192.0.2.1
    return str(ipaddress.IPv6Network((int(ip) >> (128 - PREFIX) << (128 - PREFIX), PREFIX)))
