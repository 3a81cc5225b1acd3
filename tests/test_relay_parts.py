"""The relay's and tail's pure parts: bin URLs, routes, what goes out, verdicts, positions,
provider events and what reaches a terminal."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from app import config
from app.cli import binurl, delivery, feed, position
from app.cli.lines import Printer, shown
from app.cli.routes import BadRoute, parse_route, targets_for
from app.domain.forwarding import forward_url
from app.inspect.provider_events import ProviderEvent, event_of
from app.outbound import client
from app.outbound.outgoing import capture_headers

BIN = "gu5rtn4qt5wwixrffvo4ocek6e"


@pytest.mark.parametrize(
    ("url", "server", "key"),
    [
        (f"http://127.0.0.1:8000/h/{BIN}", "http://127.0.0.1:8000", None),
        (f"https://hooks.example.com/h/{BIN}/stripe/events?x=1", "https://hooks.example.com", None),
        (f"http://localhost:8000/bins/{BIN}", "http://localhost:8000", None),
        (
            f"https://hooks.example.com/bins/{BIN}#key=abc-DEF_123",
            "https://hooks.example.com",
            "abc-DEF_123",
        ),  # fmt: skip
        (f"https://example.com/hookscope/h/{BIN}", "https://example.com/hookscope", None),
        ("http://h/bins/github-staging#key=k", "http://h", "k"),
    ],
)
def test_a_bin_url_names_its_server_bin_and_key(url, server, key):
    ref = binurl.parse(url)
    assert (ref.server, ref.key) == (server, key)
    assert ref.shown == f"{server}/bins/{ref.bin_id}"


@pytest.mark.parametrize(
    ("url", "said"),
    [
        (f"127.0.0.1:8000/h/{BIN}", "starting with http://"),
        (f"ftp://host/h/{BIN}", "starting with http://"),
        ("http://host/somewhere/else", "names no bin"),
        ("http://host/h/", "names no bin"),
        ("http://host/h/bad!id", "names no bin"),
    ],
)
def test_a_url_that_names_no_bin_is_refused_saying_what_was_expected(url, said):
    with pytest.raises(binurl.BadBinURL, match=said):
        binurl.parse(url)


class Seen:
    def __init__(self, path: str, headers: list[list[str]], event: ProviderEvent | None = None):
        self.path, self.headers, self.event = path, headers, event


ROUTES = [
    parse_route("path:/stripe/*=http://a:1/s"),
    parse_route("header:X-GitHub-Event=push=http://b:2/gh?token=x=y"),
    parse_route("header:X-Shopify-Topic=http://c:3/"),
    parse_route("event:stripe:invoice.*=https://d/inv"),
]


@pytest.mark.parametrize(
    ("seen", "targets"),
    [
        (Seen("/stripe/events", []), ("http://a:1/s",)),
        (Seen("/stripe/a/b", [["X-GitHub-Event", "push"]]), ("http://a:1/s",)),
        (Seen("/gh", [["x-github-event", "push"]]), ("http://b:2/gh?token=x=y",)),
        (Seen("/gh", [["X-GitHub-Event", "Push"]]), ("http://default",)),
        (Seen("/", [["X-Shopify-Topic", ""]]), ("http://c:3/",)),
        (Seen("/", [], ProviderEvent("stripe", "invoice.paid")), ("https://d/inv",)),
        (Seen("/", [], ProviderEvent("stripe", "charge.paid")), ("http://default",)),
        (Seen("", []), ("http://default",)),
    ],
)
def test_the_first_matching_route_takes_a_capture_else_every_default(seen, targets):
    assert targets_for(seen, ROUTES, ["http://default"]) == targets


def test_a_capture_no_route_takes_and_no_default_goes_nowhere():
    assert targets_for(Seen("/x", []), ROUTES, []) == ()


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("path:/x", "has no target URL"),
        ("/x=http://a/", "must start with path:, header: or event:"),
        ("cookie:a=http://a/", "must start with path:, header: or event:"),
        ("header:=push=http://a/", "name the header"),
        ("path:=http://a/", "give a glob after path:"),
    ],
)
def test_a_route_that_cannot_be_read_says_how_to_write_one(text, said):
    with pytest.raises(BadRoute, match=said):
        parse_route(text)


@pytest.mark.parametrize(
    ("target", "path", "query", "url"),
    [
        ("http://localhost:3000/webhooks", "/stripe/events", "a=1", "http://localhost:3000/webhooks/stripe/events?a=1"),
        ("http://localhost:3000/webhooks/", "/x", "", "http://localhost:3000/webhooks/x"),
        ("http://localhost:3000", "", "", "http://localhost:3000"),
        ("http://localhost:3000/hook", "", "", "http://localhost:3000/hook"),
        ("http://localhost:3000/hook?token=1", "/p%2Fq", "x=%20&x", "http://localhost:3000/hook/p%2Fq?token=1&x=%20&x"),
        ("http://[::1]:3000", "/a", "b", "http://[::1]:3000/a?b"),
    ],
)  # fmt: skip
def test_the_path_below_the_bin_goes_below_the_target_path(target, path, query, url):
    assert forward_url(target, path, query) == url


def test_only_hop_by_hop_headers_and_those_connection_names_are_dropped():
    headers = [
        ["Host", "hookscope.example"],
        ["Connection", "keep-alive, X-Secret, Content-Length, host"],
        ["X-Secret", "1"],
        ["Keep-Alive", "timeout=5"],
        ["x-dup", "a"],
        ["Proxy-Connection", "keep-alive"],
        ["TE", "trailers"],
        ["Trailer", "X-Sum"],
        ["Upgrade", "websocket"],
        ["Transfer-Encoding", "chunked"],
        ["Content-Length", "3"],
        ["X-DUP", "b"],
        ["Proxy-Authorization", "Basic eA=="],
    ]
    assert capture_headers(headers) == [
        ["Host", "hookscope.example"],
        ["x-dup", "a"],
        ["Transfer-Encoding", "chunked"],
        ["Content-Length", "3"],
        ["X-DUP", "b"],
        ["Proxy-Authorization", "Basic eA=="],
    ]


@pytest.mark.parametrize(
    ("status", "error", "strict", "outcome"),
    [
        (200, None, False, delivery.DELIVERED),
        (204, None, True, delivery.DELIVERED),
        (404, None, False, delivery.DELIVERED),
        (500, None, False, delivery.DELIVERED),
        (500, None, True, delivery.RETRY),
        (302, None, True, delivery.RETRY),
        (408, None, False, delivery.RETRY),
        (429, None, False, delivery.RETRY),
        (502, None, False, delivery.RETRY),
        (503, None, False, delivery.RETRY),
        (504, None, False, delivery.RETRY),
        (None, "connect_failed", False, delivery.RETRY),
        (None, "timeout", False, delivery.RETRY),
        (None, "connection_lost", False, delivery.RETRY),
        (None, "bad_url", False, delivery.NOT_SENT),
        (None, "bad_request", True, delivery.NOT_SENT),
    ],
)
def test_what_counts_as_delivered(status, error, strict, outcome):
    assert delivery.verdict(status, error, strict) == outcome


def test_backoff_doubles_to_a_ceiling_and_honours_retry_after():
    assert [delivery.backoff(n) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert delivery.backoff(1, [["Retry-After", "7"]]) == 7
    assert delivery.backoff(1, [["retry-after", "3600"]]) == 30
    assert delivery.backoff(3, [["Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT"]]) == 2


def test_a_path_holding_a_hash_is_not_sent_rather_than_cut():
    from app.cli.feed import Capture

    capture = Capture(1, "GET", "/a#b", "", None, "", False, [], b"")
    result = delivery.send(capture, "http://127.0.0.1:9/", client.Limits())
    assert (result.error, delivery.verdict(None, result.error, False)) == (
        "bad_url",
        delivery.NOT_SENT,
    )


@pytest.mark.parametrize(
    ("headers", "body", "event"),
    [
        ([["X-GitHub-Event", "push"]], b"{}", ProviderEvent("github", "push")),
        ([["x-github-event", "pull_request"]], b"", ProviderEvent("github", "pull_request")),
        ([["X-Shopify-Topic", "orders/create"]], b"{}", ProviderEvent("shopify", "orders/create")),
        ([["X-Gitlab-Event", "Push Hook"]], b"{}", ProviderEvent("gitlab", "Push Hook")),
        (
            [["Stripe-Signature", "t=1,v1=x"]],
            b'{"type": "invoice.paid"}',
            ProviderEvent("stripe", "invoice.paid"),
        ),  # fmt: skip
        (
            [["Webhook-Signature", "v1,x"]],
            b' {"type": "user.created"}',
            ProviderEvent("standard-webhooks", "user.created"),
        ),  # fmt: skip
        ([["Stripe-Signature", "t=1,v1=x"]], b'{"type": 3}', None),
        ([["Stripe-Signature", "t=1,v1=x"]], b"\xff{", None),
        ([["Stripe-Signature", "t=1,v1=x"]], b"[1]", None),
        ([], b'{"type": "invoice.paid"}', None),
        ([["X-GitHub-Event", "  "]], b"", None),
    ],
)
def test_the_provider_event_comes_from_a_header_or_the_body(headers, body, event):
    assert event_of(headers, body) == event


def test_a_position_is_kept_per_server_bin_and_target(tmp_path):
    spot = position.load(tmp_path, "http://h", BIN, "http://localhost:3000/a")
    assert spot.delivered is None
    with position.locked(spot):
        for seq in (39, 40, 41):
            spot.save(seq)
    again = position.load(tmp_path, "http://h", BIN, "http://localhost:3000/a")
    assert again.delivered == 41
    assert position.load(tmp_path, "http://h", BIN, "http://localhost:3000/b").delivered is None
    assert position.load(tmp_path, "http://other", BIN, "http://localhost:3000/a").delivered is None
    header, *lines = again.path.read_text().splitlines()
    assert (json.loads(header)["server"], json.loads(header)["bin"]) == ("http://h", BIN)
    assert lines == ["39", "40", "41"]
    assert sorted(p.suffix for p in again.path.parent.iterdir()) == [".json", ".lock"]


def test_a_position_file_is_rewritten_to_its_last_line_now_and_then(tmp_path, monkeypatch):
    monkeypatch.setattr(position, "COMPACT_AFTER", 3)
    spot = position.load(tmp_path, "http://h", BIN, "http://t")
    spot.path.parent.mkdir(parents=True)
    for seq in range(1, 8):
        spot.save(seq)
    spot.close()
    assert spot.path.read_text().splitlines()[1:] == ["7"]
    assert position.load(tmp_path, "http://h", BIN, "http://t").delivered == 7


@pytest.mark.parametrize(
    ("text", "delivered"),
    [
        ("{", None),
        ('{"delivered": 3}\n', None),
        ("{}\n12", None),  # a line cut short by a crash is not a position
        ("{}\n12\n1", 12),
        ("{}\n12\n-3\nx\n", 12),
        ("", None),
    ],
)
def test_only_whole_lines_of_digits_are_positions(tmp_path, text, delivered):
    spot = position.load(tmp_path, "http://h", BIN, "http://t")
    spot.path.parent.mkdir(parents=True)
    spot.path.write_text(text)
    assert position.load(tmp_path, "http://h", BIN, "http://t").delivered == delivered


def test_the_state_directory_follows_xdg(tmp_path):
    assert config.client_state_dir({"XDG_STATE_HOME": str(tmp_path)}) == tmp_path / "hookscope"
    home = Path.home() / ".local" / "state" / "hookscope"
    assert config.client_state_dir({"XDG_STATE_HOME": "relative/dir"}) == home
    assert config.client_state_dir({}) == home
    assert config.client_read_key({"HOOKSCOPE_KEY": " k "}) == "k"
    assert config.client_read_key({}) is None


def test_what_reaches_a_terminal_is_escaped():
    assert shown("POST /naïve ☃") == "POST /naïve ☃"
    assert shown("a\x1b[31mb\x07c\u202ed\x7f") == "a\\x1b[31mb\\x07c\\u202ed\\x7f"
    assert shown("line\nnext\tx\r", keep="\n\t") == "line\nnext\tx\\x0d"
    out, err = io.StringIO(), io.StringIO()
    printer = Printer(as_json=True, out=out, err=err)
    printer.line({"path": "/é\x1b"}, "ignored")
    printer.note("t", "server said \x1b[2J")
    printer.note("t", "server said \x1b[2J")
    assert out.getvalue() == '{"path": "/\\u00e9\\u001b"}\n'
    assert err.getvalue() == "hookscope: server said \\x1b[2J\n"


@pytest.mark.parametrize(
    ("status", "body", "raised", "said"),
    [
        (404, b'{"error": "bin_not_found", "message": "x"}', feed.Refused, "no such bin, or this"),
        (404, b'{"error": "not_found", "message": "x"}', feed.Refused, "has no such API"),
        (404, b"<html>", feed.Refused, "has no such API"),
        (
            400,
            b'{"error": "bad_parameter", "message": "after must be"}',
            feed.Refused,
            "answered 400: after must be",
        ),  # fmt: skip
        (
            503,
            b'{"error": "storage_unavailable", "message": "try again"}',
            feed.Unreachable,
            "answered 503: try again",
        ),  # fmt: skip
        (429, b"", feed.Unreachable, "answered 429"),
        (502, b"Bad Gateway", feed.Unreachable, "answered 502"),
        (200, b"<html>", feed.Unreachable, "not JSON"),
    ],
)
def test_what_a_server_answer_means_to_the_client(status, body, raised, said):
    with pytest.raises(raised, match=said):
        feed._judge(status, body, "hooks.example.com")


def test_the_stream_buffer_keeps_the_newest_and_says_at_once_what_it_will_not_have():
    import threading

    from app.cli.feed import Capture
    from app.cli.recent import TOO_LARGE, Recent

    def capture(seq: int, size: int = 10) -> Capture:
        return Capture(seq, "POST", "/", "", None, "", False, [], b"x" * size)

    recent = Recent(max_captures=3, max_bytes=25)
    recent.set_live(True)
    for seq in (1, 2, 3):
        recent.put(seq, capture(seq, 5))
    recent.put(4, capture(4, 5))
    assert recent.wait_for(1, 0) is None  # the oldest went
    assert recent.wait_for(4, 0).seq == 4
    recent.put(5, capture(5, 20))  # over the bytes: the oldest go until it fits
    assert [recent.wait_for(s, 0) is not None for s in (2, 3, 4, 5)] == [False, False, True, True]
    recent.put(6, TOO_LARGE)
    assert recent.wait_for(6, 10) is None  # at once: the reader reads it by seq
    threading.Timer(0.05, lambda: recent.put(7, capture(7))).start()
    assert recent.wait_for(7, 10).seq == 7  # a moment out of order
    recent.set_live(False)
    assert recent.wait_for(8, 10) is None  # at once: no stream, nothing to wait for


def test_the_private_part_the_stream_relies_on_is_there():
    from app import internals
    from app.cli import stream

    assert internals.check(stream.RELIANCES) == []
