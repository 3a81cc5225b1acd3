"""Connections kept open between outbound calls: reused only when that is safe."""

from __future__ import annotations

import socket

import pytest
from http_recorder import Received, Recorder

from app.outbound import client, guard
from app.outbound.pool import Pool

ALLOW = guard.parse_allow_list("127.0.0.1/32, 127.0.0.2/32")
HEADERS = [["Content-Type", "application/octet-stream"], ["X-Dup", "1"], ["X-Dup", "2"]]


@pytest.fixture
def pool():
    kept = Pool()
    yield kept
    kept.close()


@pytest.fixture
def target():
    with Recorder("127.0.0.1", keep_alive=True) as recorder:
        yield recorder


def post(url: str, body: bytes, pool: Pool | None, **kwargs) -> client.Result:
    result = client.send("POST", url, HEADERS, body, allow=ALLOW, pool=pool, **kwargs)
    assert result.error is None, result.message
    return result


def test_a_kept_connection_carries_the_next_calls_to_the_same_target(target, pool):
    bodies = [f"capture {i}\x00\xff".encode() for i in range(5)]

    results = [post(f"{target.url}/in/{i}", body, pool) for i, body in enumerate(bodies)]

    assert [r.status for r in results] == [200] * 5
    assert [r.body for r in results] == [b"ok"] * 5
    assert [r.body for r in target.requests] == bodies
    assert [r.target for r in target.requests] == [f"/in/{i}".encode() for i in range(5)]
    assert target.connections == 1
    assert pool.idle() == 1
    pool.close()
    assert pool.idle() == 0


def test_without_a_pool_every_call_has_its_own_connection(target):
    for i in range(3):
        post(f"{target.url}/in", bytes([i]), None)

    assert target.connections == 3


@pytest.mark.parametrize(
    "answer",
    [
        (200, [("Connection", "close")], b"ok"),
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",  # 1.0 closes unless asked not to
        b"HTTP/1.1 200 OK\r\n\r\nok",  # the body ends where the connection does
    ],
    ids=["connection-close", "http-1.0", "read-to-eof"],
)
def test_an_answer_that_ends_the_connection_is_not_kept(answer, pool):
    def respond(_request: Received):
        return answer

    with Recorder("127.0.0.1", respond, keep_alive=True) as target:
        first = post(target.url, b"a", pool)
        assert pool.idle() == 0
        second = post(target.url, b"b", pool)

    assert (first.status, first.body, second.status, second.body) == (200, b"ok", 200, b"ok")
    assert [r.connection for r in target.requests] == [1, 2]


def test_an_answer_cut_at_the_limit_is_not_kept(target, pool):
    target.respond = lambda _request: (200, [], b"x" * 100)
    limits = client.Limits(max_response_bytes=10)

    first = post(target.url, b"a", pool, limits=limits)
    second = post(target.url, b"b", pool, limits=limits)

    assert first.truncated and second.truncated
    assert [r.connection for r in target.requests] == [1, 2]
    assert pool.idle() == 0


def test_bytes_nobody_asked_for_are_never_read_as_the_next_answer(pool):
    # The first answer's Content-Length says 2; a second answer follows it unasked.
    stray = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 418 X\r\nContent-Length: 0\r\n\r\n"
    )
    answers = iter([[stray], (201, [], b"second")])  # pieces: the connection stays open

    with Recorder("127.0.0.1", lambda _request: next(answers), keep_alive=True) as target:
        first = post(target.url, b"a", pool)
        second = post(target.url, b"b", pool)

    assert (first.status, first.body) == (200, b"ok")
    assert (second.status, second.body) == (201, b"second")
    assert [r.connection for r in target.requests] == [1, 2]


def test_a_kept_connection_closed_unanswered_is_tried_once_more_on_a_new_one(pool):
    """The server took the second request on the kept connection and closed it unanswered, as
    one whose idle timeout struck just then does: the call is made again on a new connection."""
    served: dict[int, int] = {}

    def respond(request: Received):
        served[request.connection] = served.get(request.connection, 0) + 1
        return b"" if served[request.connection] == 2 else (200, [], b"ok")

    with Recorder("127.0.0.1", respond, keep_alive=True) as target:
        first = post(target.url, b"first", pool)
        second = post(target.url, b"second", pool)

    assert (first.status, second.status) == (200, 200)
    assert [(r.connection, r.body) for r in target.requests] == [
        (1, b"first"),
        (1, b"second"),  # closed unanswered
        (2, b"second"),
    ]


def test_a_connection_the_server_closed_while_idle_is_not_reused(pool):
    # A keep-alive answer from a server that then closes the connection anyway.
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    with Recorder("127.0.0.1", lambda _request: answer) as target:
        results = [post(target.url, bytes([i]), pool) for i in range(3)]

    assert [(r.status, r.body) for r in results] == [(200, b"ok")] * 3
    # Each request once, each on its own connection: either the answer's end or the next
    # call's look at the kept connection found it closed.
    assert [(r.connection, r.body) for r in target.requests] == [
        (i + 1, bytes([i])) for i in range(3)
    ]


def test_a_connection_idle_too_long_is_closed_and_a_new_one_made(target):
    now = [0.0]
    pool = Pool(idle_seconds=4.0, clock=lambda: now[0])
    try:
        post(target.url, b"a", pool)
        now[0] = 3.9
        post(target.url, b"b", pool)
        now[0] = 8.0
        post(target.url, b"c", pool)
    finally:
        pool.close()

    assert [r.connection for r in target.requests] == [1, 1, 2]


def test_a_kept_connection_is_taken_only_for_the_address_just_checked(target, pool):
    answers = {"hook.test": ["127.0.0.1"]}

    def resolve(host: str, _port: int) -> list[str]:
        return answers[host]

    url = f"http://hook.test:{target.port}/in"
    with Recorder("127.0.0.2", keep_alive=True, port=target.port) as other:
        post(url, b"a", pool, resolve=resolve)
        answers["hook.test"] = ["127.0.0.2"]  # the name now points elsewhere
        post(url, b"b", pool, resolve=resolve)
        # The guard judges the name's addresses before any kept connection is looked at.
        refused = client.send(
            "POST", url, [], b"c", allow=guard.parse_allow_list("127.0.0.2/32"), resolve=resolve
        )
        answers["hook.test"] = ["127.0.0.1"]
        refused_with_pool = client.send(
            "POST",
            url,
            [],
            b"d",
            allow=guard.parse_allow_list("127.0.0.2/32"),
            resolve=resolve,
            pool=pool,
        )
        assert [r.body for r in other.requests] == [b"b", b"c"]

    assert refused.error is None  # 127.0.0.2 is allowed there
    assert refused_with_pool.error == "target_forbidden"
    assert [r.body for r in target.requests] == [b"a"]  # nothing went on the kept connection


def test_the_pool_keeps_at_most_its_bounds_and_closes_the_rest():
    pool = Pool(per_key=2, total=3)
    pairs = [socket.socketpair() for _ in range(5)]
    try:
        for i, (mine, _theirs) in enumerate(pairs[:3]):
            pool.give_back(Pool.key("http", "a", 80, "127.0.0.1", None), mine)
            assert pool.idle() == min(i + 1, 2)
        pool.give_back(Pool.key("http", "b", 80, "127.0.0.1", None), pairs[3][0])
        pool.give_back(Pool.key("http", "c", 80, "127.0.0.1", None), pairs[4][0])
        assert pool.idle() == 3
        closed = [mine.fileno() == -1 for mine, _theirs in pairs]
        # "a" kept its newest two until "c" came and the oldest idle one overall went.
        assert closed == [True, True, False, False, False]
        assert pool.take("http", "a", 80, ["127.0.0.1"], None) == (pairs[2][0], "127.0.0.1")
        assert pool.take("http", "a", 80, ["127.0.0.1"], None) is None
    finally:
        pool.close()
        for mine, theirs in pairs:
            mine.close()
            theirs.close()
