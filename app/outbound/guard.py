"""Decide whether Hookscope may send a request to a host or address. Pure: no sockets, no Flask.

Replay and auto-forward send requests where a bin's owner points them. Unchecked, that lets
anyone with a bin make the server call its own loopback services, the private network behind it
or the cloud metadata endpoint (request-baskets, CVE-2023-27163). Only public unicast addresses
pass, unless the operator lists a host or network in HOOKSCOPE_OUTBOUND_ALLOW. The client checks
the address it actually connects to (app/outbound/client.py); this module only judges.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from . import spelling

ALLOW_SETTING = "HOOKSCOPE_OUTBOUND_ALLOW"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Metadata services hand out cloud credentials; they are refused even inside an allow-listed
# network, and pass only when the allow-list names the exact address.
METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle...
        "169.254.170.2",  # AWS ECS task credentials
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure WireServer: a public address that only answers inside Azure
    )
)

# What each kind of address is, in words for the refusal message.
KINDS = {
    "metadata": "a cloud metadata address",
    "loopback": "a loopback address",
    "private": "a private network address",
    "shared": "a carrier-grade NAT address (100.64.0.0/10)",
    "link_local": "a link-local address",
    "multicast": "a multicast address",
    "unspecified": "an unspecified address (it reaches this machine)",
    "reserved": "a reserved address",
    "benchmarking": "a benchmarking address (198.18.0.0/15)",
    "documentation": "a documentation address",
}

# First match wins, so a narrow range comes before the wide one holding it. Anything not listed
# is public; IPv6 outside 2000::/3 is not assigned for unicast and is refused as reserved.
_V4_RANGES = (
    ("0.0.0.0/8", "unspecified"),  # "this network": 0.0.0.0 connects to this machine
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link_local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),  # IETF protocol assignments
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "reserved"),  # retired 6to4 relays
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),  # 255.255.255.255 (broadcast) included
)
_V6_RANGES = (
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    # Local-use NAT64 (RFC 8215): the operator's own translator, into its own network; where
    # the IPv4 address sits inside depends on the prefix length it chose.
    ("64:ff9b:1::/48", "private"),
    ("100::/64", "reserved"),  # discard-only
    ("2001:2::/48", "benchmarking"),
    ("2001:db8::/32", "documentation"),
    ("2001::/23", "reserved"),  # IETF protocol assignments (Teredo is checked before)
    ("3fff::/20", "documentation"),
    ("5f00::/16", "reserved"),  # SRv6 segment identifiers
    ("fc00::/7", "private"),  # unique local
    ("fe80::/10", "link_local"),
    ("fec0::/10", "private"),  # site-local, deprecated
    ("ff00::/8", "multicast"),
)
_V4_TABLE = tuple((ipaddress.ip_network(n), kind) for n, kind in _V4_RANGES)
_V6_TABLE = tuple((ipaddress.ip_network(n), kind) for n, kind in _V6_RANGES)
_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True)
class AllowList:
    """Hosts and networks the operator lets outbound requests reach."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: tuple[str, ...] = ()  # lower case; "*.example.com" is any name below example.com
    # Every address passes: for the CLI relay, which runs on the user's own machine.
    unrestricted: bool = False

    def allows_host(self, host: str) -> bool:
        """Tell whether a host name is listed, exactly or under a ``*.`` entry."""
        host = host.lower().rstrip(".")
        return any(
            host == entry or (entry.startswith("*.") and host.endswith(entry[1:]))
            for entry in self.hosts
        )

    def allows_address(self, address: IPAddress, *, exactly: bool = False) -> bool:
        """Tell whether an address is in a listed network (or, ``exactly``, is listed alone)."""
        return any(
            address in net and (not exactly or net.prefixlen == net.max_prefixlen)
            for net in self.networks
            if net.version == address.version
        )


UNRESTRICTED = AllowList(unrestricted=True)


@dataclass(frozen=True)
class Verdict:
    """Whether a target may be reached, and why, in words a user can act on."""

    allowed: bool
    # "public", "allow_listed", "unrestricted", a key of KINDS, "ambiguous_address", "bad_host"
    reason: str
    target: str  # the host or address judged
    message: str


def parse_allow_list(text: str) -> AllowList:
    """Read comma- or space-separated hosts, addresses and CIDR networks; raise ValueError."""
    networks: list[IPNetwork] = []
    hosts: list[str] = []
    for entry in text.replace(",", " ").split():
        bare = entry[1:-1] if entry.startswith("[") and entry.endswith("]") else entry
        try:
            networks.append(ipaddress.ip_network(bare))
            continue
        except ValueError:
            pass
        name = entry.lower().removeprefix("*.")
        if spelling.legacy_ipv4(name) is None and spelling.is_host_name(name):
            hosts.append(entry.lower().rstrip("."))
            continue
        try:
            hint = f"; did you mean {ipaddress.ip_network(bare, strict=False)}?"
        except ValueError:
            hint = ""
        raise ValueError(
            f"{entry!r} is not a host name (hooks.example.com, *.example.com), an address "
            f"(10.1.2.3, ::1) or a network (10.0.0.0/8){hint}"
        )
    return AllowList(tuple(networks), tuple(hosts))


def classify(address: IPAddress) -> str:
    """Name what kind of address this is: "public" or a key of KINDS."""
    if address in METADATA:
        return "metadata"
    if isinstance(address, ipaddress.IPv4Address):
        return next((kind for net, kind in _V4_TABLE if address in net), "public")
    embedded = _embedded_ipv4(address)
    if embedded:
        return next((k for k in map(classify, embedded) if k != "public"), "public")
    kind = next((kind for net, kind in _V6_TABLE if address in net), None)
    if kind:
        return kind
    return "public" if address in _GLOBAL_UNICAST else "reserved"


def check_address(
    address: str | IPAddress, allow: AllowList, *, host: str | None = None
) -> Verdict:
    """Judge one address a connection would go to; ``host`` is the name that led to it."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    kind = classify(ip)
    if kind == "public":
        return Verdict(True, "public", str(ip), f"{ip} is a public address")
    if allow.unrestricted:
        return Verdict(True, "unrestricted", str(ip), f"{ip} is {KINDS[kind]}; nothing is refused")
    # An IPv4-mapped address is the IPv4 address itself, so an entry for either covers both.
    same = (
        [ip, ip.ipv4_mapped] if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else [ip]
    )
    if kind == "metadata":
        listed = any(allow.allows_address(a, exactly=True) for a in same)
    else:
        listed = bool(host and allow.allows_host(host)) or any(map(allow.allows_address, same))
    if listed:
        return Verdict(True, "allow_listed", str(ip), f"{ip} is allow-listed ({ALLOW_SETTING})")
    return Verdict(False, kind, str(ip), _refusal(ip, kind, host))


def check_host(host: str, allow: AllowList) -> Verdict | None:
    """Judge a URL's host before resolving it; None means its addresses decide.

    Resolvers read ``2130706433``, ``0x7f.1``, ``017700000001`` and ``127.1`` as 127.0.0.1 (the
    old inet_aton forms); they are refused whatever they mean, so that the address a user sees
    in a URL is the one it reaches.
    """
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if "%" in bare:
        return Verdict(
            False, "bad_host", host, f"{host!r}: zone and percent-encoded hosts are not supported"
        )
    try:
        return check_address(ipaddress.ip_address(bare), allow)
    except ValueError:
        pass
    name = bare.lower()
    legacy = spelling.legacy_ipv4(name)
    if legacy:
        return Verdict(
            False,
            "ambiguous_address",
            host,
            f"{host!r} is {legacy} written in a form that resolvers read but URL parsers may "
            f"not; write the address as {legacy}",
        )
    if legacy == "":
        return Verdict(
            False,
            "ambiguous_address",
            host,
            f"{host!r} ends in a number, so it is neither a host name nor an IPv4 address",
        )
    if not spelling.is_host_name(name):
        return Verdict(False, "bad_host", host, f"{host!r} is not a valid host name")
    return None


def _refusal(address: IPAddress, kind: str, host: str | None) -> str:
    embedded = _embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else ()
    inside = f" (which carries {', '.join(map(str, embedded))})" if embedded else ""
    what = f"{host} resolves to {address}{inside}, " if host else f"{address}{inside} is "
    if kind == "metadata":
        return (
            f"{what}{KINDS[kind]}; it is refused unless {ALLOW_SETTING} lists exactly "
            f"{address}/{address.max_prefixlen} (a wider network does not let it through)"
        )
    mapped = isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped
    example = f"{mapped}/32" if mapped else f"{address}/{address.max_prefixlen}"
    if host:
        example = f"{host} or {example}"
    return (
        f"{what}{KINDS[kind]}; Hookscope sends only to public addresses unless "
        f"{ALLOW_SETTING} lists the host or address (for example {example})"
    )


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """Return the IPv4 addresses an IPv6 address carries (mapped, NAT64, 6to4, Teredo)."""
    if address.ipv4_mapped:
        return (address.ipv4_mapped,)
    if address in _NAT64:
        return (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF),)
    if address.sixtofour:
        return (address.sixtofour,)
    if address.teredo:
        return address.teredo  # (server, client)
    return ()
