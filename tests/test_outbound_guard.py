"""Outbound safety: replay and forward reach only public addresses, unless the operator allows.

Each refusal is tried for real against an HTTP server on loopback, which must receive nothing.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest
from http_recorder import Recorder

from app.outbound import client, guard, spelling

NOTHING_ALLOWED = guard.AllowList()
LOOPBACK_ONE = guard.parse_allow_list("127.0.0.1/32")


@pytest.fixture
def target():
    """An HTTP server on 127.0.0.1 that records whatever reaches it."""
    with Recorder("127.0.0.1") as recorder:
        yield recorder


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.parametrize(
    ("host", "means"),
    [
        ("localhost", "127.0.0.1"),  # a host name resolving to loopback
        ("127.0.0.1", "127.0.0.1"),
        ("[::ffff:127.0.0.1]", "127.0.0.1"),  # IPv4-mapped IPv6
        ("[::ffff:7f00:1]", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),  # decimal
        ("0x7f.1", "127.0.0.1"),  # hex and short form
        ("017700000001", "127.0.0.1"),  # octal
        ("0177.0.0.1", "127.0.0.1"),  # octal label
        ("127.1", "127.0.0.1"),  # short form
        ("0x7f000001", "127.0.0.1"),
        ("１２７.０.０.１", "127.0.0.1"),  # fullwidth digits, mapped by IDNA
        ("0.0.0.0", "0.0.0.0"),  # connects to this machine on Linux
        ("[::]", "::"),
        ("[64:ff9b::7f00:1]", "127.0.0.1"),  # NAT64 carrying loopback
        ("[2002:7f00:1::]", "127.0.0.1"),  # 6to4 carrying loopback
    ],
)
def test_loopback_in_any_spelling_is_refused(target, host, means):
    url = f"http://{host}:{target.port}/admin"
    result = client.send("GET", url, [], allow=NOTHING_ALLOWED)

    assert result.error == "target_forbidden", result
    assert means in result.message
    assert target.requests == []


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://169.254.169.254/latest/meta-data/", "a cloud metadata address"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "a cloud metadata address"),
        ("http://100.100.100.200/latest/meta-data/", "a cloud metadata address"),
        ("http://[fd00::1]/", "a private network address"),
        ("http://10.1.2.3/", "a private network address"),
        ("http://172.16.0.1/", "a private network address"),
        ("http://192.168.1.1/", "a private network address"),
        ("http://100.64.0.1/", "carrier-grade NAT"),
        ("http://169.254.1.1/", "a link-local address"),
        ("http://[fe80::1]/", "a link-local address"),
        ("http://224.0.0.1/", "a multicast address"),
        ("http://[ff02::1]/", "a multicast address"),
        ("http://255.255.255.255/", "a reserved address"),
        ("http://198.18.0.1/", "a benchmarking address"),
        ("http://192.0.2.1/", "a documentation address"),
        ("http://[2001:db8::1]/", "a documentation address"),
    ],
)
def test_private_and_metadata_addresses_are_refused_before_connecting(url, kind):
    result = client.send("GET", url, [], allow=NOTHING_ALLOWED)

    assert result.error == "target_forbidden"
    assert kind in result.message
    assert guard.ALLOW_SETTING in result.message
    assert result.address is not None and result.address in result.message


def test_ipv6_loopback_is_refused():
    if not has_ipv6_loopback():
        pytest.skip("this machine has no ::1")
    with Recorder("::1") as recorder:
        result = client.send("GET", recorder.url, [], allow=LOOPBACK_ONE)

    assert result.error == "target_forbidden"
    assert "::1 is a loopback address" in result.message
    assert recorder.requests == []


def test_the_refusal_names_the_address_and_the_setting(target):
    result = client.send(
        "POST", f"http://localhost:{target.port}/x", [], b"{}", allow=NOTHING_ALLOWED
    )

    assert result.error == "target_forbidden"
    assert result.message.startswith("localhost resolves to ")
    assert "loopback" in result.message
    assert "HOOKSCOPE_OUTBOUND_ALLOW" in result.message


def test_an_allow_listed_local_target_is_reached(target):
    result = client.send(
        "POST",
        f"{target.url}/hook?x=1",
        [["Content-Type", "application/json"]],
        b'{"ok": true}',
        allow=LOOPBACK_ONE,
    )

    assert result.error is None, result.message
    assert result.status == 200
    assert result.address == "127.0.0.1"
    assert [r.target for r in target.requests] == [b"/hook?x=1"]
    assert target.requests[0].body == b'{"ok": true}'


def test_an_allow_listed_host_name_reaches_what_it_resolves_to(target):
    result = client.send(
        "GET", f"http://localhost:{target.port}/", [], allow=guard.parse_allow_list("localhost")
    )

    assert result.error is None, result.message
    assert len(target.requests) == 1


def test_the_odd_spellings_reach_loopback_through_the_resolver_and_are_refused_there():
    """If a spelling ever got past the URL check, the connected address is still judged."""
    for odd in ("2130706433", "0x7f.1", "017700000001", "127.1"):
        addresses = client.resolve_host(odd, 80)
        assert addresses == ["127.0.0.1"]
        verdict = guard.check_address(addresses[0], NOTHING_ALLOWED, host=odd)
        assert not verdict.allowed and verdict.reason == "loopback"


def test_a_metadata_address_needs_an_exact_entry():
    wide = guard.parse_allow_list("169.254.0.0/16, 0.0.0.0/0")
    exact = guard.parse_allow_list("169.254.169.254")

    assert guard.check_address("169.254.1.1", wide).allowed
    refused = guard.check_address("169.254.169.254", wide)
    assert not refused.allowed and "lists exactly 169.254.169.254/32" in refused.message
    assert guard.check_address("169.254.169.254", exact).allowed


class Rebinding:
    """A resolver whose answer changes after the first question, as a rebinding attack does."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.asked = 0

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked += 1
        return self.answers[min(self.asked, len(self.answers)) - 1]


def test_a_name_is_resolved_once_and_the_connection_goes_to_the_checked_address(target):
    with Recorder("127.0.0.2", port=target.port) as unchecked:
        resolver = Rebinding(["127.0.0.1"], ["127.0.0.2"])
        result = client.send(
            "GET",
            f"http://hooks.example.com:{target.port}/",
            [],
            allow=LOOPBACK_ONE,
            resolve=resolver,
        )

    assert result.error is None, result.message
    assert result.address == "127.0.0.1"
    assert resolver.asked == 1
    assert len(target.requests) == 1
    assert unchecked.requests == []
    assert target.requests[0].header(b"Host") == f"hooks.example.com:{target.port}".encode()


@pytest.mark.parametrize(
    "answer", [["127.0.0.2"], ["127.0.0.1", "127.0.0.2"], ["127.0.0.2", "127.0.0.1"]]
)
def test_a_name_with_any_forbidden_answer_is_refused(target, answer):
    with Recorder("127.0.0.2", port=target.port) as other:
        result = client.send(
            "GET",
            f"http://hooks.example.com:{target.port}/",
            [],
            allow=LOOPBACK_ONE,
            resolve=Rebinding(answer),
        )

    assert result.error == "target_forbidden"
    assert result.message.startswith("hooks.example.com resolves to 127.0.0.2, a loopback")
    assert target.requests == [] and other.requests == []


def redirect_to(location: str):
    def respond(_request):
        return 302, [("Location", location)], b""

    return respond


@pytest.mark.parametrize(
    "location",
    ["http://127.0.0.2:{port}/internal", "http://[::1]:{port}/internal", "http://0x7f.2:{port}/"],
)
def test_a_redirect_to_a_forbidden_address_is_refused_on_the_hop(location):
    with Recorder("127.0.0.2") as forbidden:
        hop = location.format(port=forbidden.port)
        with Recorder("127.0.0.1", redirect_to(hop)) as allowed:
            result = client.send(
                "GET",
                f"{allowed.url}/start",
                [],
                allow=LOOPBACK_ONE,
                limits=client.Limits(max_redirects=5),
            )

    assert result.error == "target_forbidden"
    assert result.message.startswith(f"redirect 1 to {hop}: ")
    assert [h.status for h in result.redirects] == [302]
    assert len(allowed.requests) == 1
    assert forbidden.requests == []


def test_a_public_looking_name_that_redirects_to_a_private_address_is_refused(target):
    """The first hop is allowed by name; its redirect names a loopback address directly."""
    target.respond = redirect_to(f"http://127.0.0.1:{target.port}/admin")
    result = client.send(
        "GET",
        f"http://public.example:{target.port}/",
        [],
        allow=guard.parse_allow_list("public.example"),
        limits=client.Limits(max_redirects=1),
        resolve=Rebinding(["127.0.0.1"]),
    )

    assert result.error == "target_forbidden"
    assert "127.0.0.1 is a loopback address" in result.message
    assert [r.target for r in target.requests] == [b"/"]


def test_redirects_are_not_followed_by_default(target):
    target.respond = redirect_to("http://127.0.0.2/")
    result = client.send("GET", target.url, [], allow=LOOPBACK_ONE)

    assert result.error is None
    assert result.status == 302
    assert result.redirects == ()


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("8.8.8.8", "public"),
        ("2606:4700:4700::1111", "public"),
        ("::ffff:8.8.8.8", "public"),
        ("64:ff9b::808:808", "public"),  # NAT64 to a public address
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("0.1.2.3", "unspecified"),
        ("10.0.0.1", "private"),
        ("fc00::1", "private"),
        ("fec0::1", "private"),
        ("64:ff9b:1::a00:1", "private"),  # local-use NAT64
        ("100.127.255.255", "shared"),
        ("169.254.169.254", "metadata"),
        ("169.254.170.2", "metadata"),
        ("168.63.129.16", "metadata"),
        ("fe80::abcd", "link_local"),
        ("::ffff:169.254.169.254", "metadata"),
        ("::ffff:10.0.0.1", "private"),
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "private"),  # Teredo, client 10.0.0.1
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "reserved"),
        ("192.0.0.8", "reserved"),
        ("100::1", "reserved"),
        ("2001:2::1", "benchmarking"),
        ("198.19.255.255", "benchmarking"),
        ("203.0.113.9", "documentation"),
        ("3fff::1", "documentation"),
        ("::7f00:1", "reserved"),  # IPv4-compatible, deprecated
        ("4000::1", "reserved"),  # outside 2000::/3
    ],
)
def test_classify(address, kind):
    assert guard.classify(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize(
    ("text", "networks", "hosts"),
    [
        ("", [], []),
        ("127.0.0.1/32", ["127.0.0.1/32"], []),
        ("127.0.0.1, ::1 10.0.0.0/8", ["127.0.0.1/32", "::1/128", "10.0.0.0/8"], []),
        ("[::1]", ["::1/128"], []),
        (
            "host.docker.internal,*.svc.cluster.local",
            [],
            ["host.docker.internal", "*.svc.cluster.local"],
        ),
        ("Localhost.", [], ["localhost"]),
    ],
)
def test_parse_allow_list(text, networks, hosts):
    allow = guard.parse_allow_list(text)

    assert [str(n) for n in allow.networks] == networks
    assert list(allow.hosts) == hosts


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("10.0.0.1/8", "did you mean 10.0.0.0/8?"),
        ("0x7f.1", "is not a host name"),
        ("host:8080", "is not a host name"),
        ("http://example.com", "is not a host name"),
        ("a..b", "is not a host name"),
        ("::1/129", "is not a host name"),
    ],
)
def test_parse_allow_list_refuses_bad_entries(text, says):
    with pytest.raises(ValueError) as caught:
        guard.parse_allow_list(text)

    assert says in str(caught.value)
    assert repr(text) in str(caught.value)


def test_wildcard_host_entries_match_names_below_only():
    allow = guard.parse_allow_list("*.svc.local")

    assert allow.allows_host("api.svc.local")
    assert allow.allows_host("a.b.svc.local.")
    assert not allow.allows_host("svc.local")
    assert not allow.allows_host("evilsvc.local")


@pytest.mark.parametrize(
    ("host", "means"),
    [
        ("example.com", None),
        ("1.2.3.4", None),
        ("a1.b2", None),
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0X7F.0.0.1".lower(), "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1.1", "10.1.0.1"),
        ("0x", "0.0.0.0"),
        ("1.2.3.4.", "1.2.3.4"),
        ("1.2.3.256", ""),  # a number, but no address
        ("08.1", ""),  # not octal
        ("foo.123", ""),
        ("1.2.3.4.5", ""),
    ],
)
def test_numeric_host_spellings(host, means):
    assert spelling.legacy_ipv4(host) == means
