"""Auto-forward under the real server: every capture reaches the bin's targets, once."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from harness import Gunicorn, free_port
from http_recorder import Recorder

ALLOW = {
    "HOOKSCOPE_OUTBOUND_ALLOW": "127.0.0.1/32",
    "HOOKSCOPE_OUTBOUND_TIMEOUT_SECONDS": "5",
    "HOOKSCOPE_FORWARD_RETRY_SECONDS": "1",
}


def wait_for(check, seconds: float = 60, what: str = "it") -> object:
    """Poll until ``check()`` is truthy; fail after ``seconds`` (a bound, not a speed test)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {seconds} s")


def forwarding_bin(server, *targets: str) -> str:
    bin_id = server.create_bin()["id"]
    r = requests.patch(
        f"{server.url}/api/v1/bins/{bin_id}",
        json={"forward_to": list(targets)},
        auth=server.auth,
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert r.json()["forward_to"] == list(targets)
    return bin_id


def send(server, bin_id: str, body: bytes, path: str = "") -> int:
    r = requests.post(f"{server.url}/h/{bin_id}{path}", data=body, timeout=10)
    assert r.status_code == 200, r.text
    return int(r.headers["X-Hookscope-Seq"])


def attempts(server, bin_id: str, seq: int) -> list[dict]:
    r = requests.get(
        f"{server.url}/api/v1/bins/{bin_id}/requests/{seq}/attempts", auth=server.auth, timeout=10
    )
    return r.json()["attempts"]


def finished(server, bin_id: str, seq: int) -> list[dict]:
    return [a for a in attempts(server, bin_id, seq) if a["state"] == "done"]


def retry_pending(server, bin_id: str, seq: int) -> bool:
    history = attempts(server, bin_id, seq)
    return len(history) == 2 and history[0]["state"] == "pending"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with Gunicorn(tmp_path_factory.mktemp("forward"), ALLOW) as running:
        yield running


def test_every_capture_is_forwarded_byte_for_byte_and_recorded(server):
    with Recorder("127.0.0.1") as target:
        bin_id = forwarding_bin(server, target.url + "/in")
        bodies = {send(server, bin_id, f"capture {i}\x00\xff".encode(), f"/p{i}?i={i}"): i
                  for i in range(20)}  # fmt: skip
        wait_for(lambda: len(target.requests) >= 20, what="20 deliveries")

        got = sorted(target.requests, key=lambda r: r.target)
        assert sorted(r.target for r in got) == sorted(
            f"/in/p{i}?i={i}".encode() for i in range(20)
        )
        for r in got:
            i = int(r.target.rsplit(b"=", 1)[1])
            assert r.body == f"capture {i}\x00\xff".encode()
        for seq in bodies:
            done = wait_for(lambda seq=seq: finished(server, bin_id, seq), what="the outcome")
            assert done[0]["kind"] == "forward"
            assert done[0]["response"]["status"] == 200
            assert done[0]["retry_at"] is None
        assert len(target.requests) == 20  # nothing twice


def test_tries_to_one_target_share_kept_connections(server):
    """A target that keeps connections open gets every capture, over no more connections than
    the bin may have tries in flight (HOOKSCOPE_OUTBOUND_CONCURRENCY_PER_BIN, 4), not one each."""
    with Recorder("127.0.0.1", keep_alive=True) as target:
        bin_id = forwarding_bin(server, target.url + "/in")
        for i in range(12):
            send(server, bin_id, f"kept {i}".encode())
        wait_for(lambda: len(target.requests) >= 12, what="12 deliveries")

    assert sorted(r.body for r in target.requests) == sorted(
        f"kept {i}".encode() for i in range(12)
    )
    assert target.connections <= 4


def test_the_senders_answer_never_waits_for_the_target(server):
    release = threading.Event()
    order: list[str] = []

    def slow(_request):
        release.wait(30)
        order.append("target answered")
        return 200, [], b"ok"

    with Recorder("127.0.0.1", slow) as target:
        bin_id = forwarding_bin(server, target.url)
        send(server, bin_id, b"hello")
        order.append("sender answered")
        wait_for(lambda: target.requests, what="the forward to arrive")
        release.set()
        wait_for(lambda: len(order) == 2)

    assert order == ["sender answered", "target answered"]


def test_a_failing_target_is_retried_with_backoff_until_it_recovers(server):
    failures = {"left": 6}
    delivered: list[bytes] = []

    def flaky(request):
        if failures["left"] > 0:
            failures["left"] -= 1
            return 503, [], b"down for maintenance"
        delivered.append(request.body)
        return 204, [], b""

    with Recorder("127.0.0.1", flaky) as target:
        bin_id = forwarding_bin(server, target.url)
        seqs = [send(server, bin_id, f"event {i}".encode()) for i in range(3)]
        wait_for(lambda: len(delivered) >= 3, what="every capture delivered")
        time.sleep(1.5)  # a duplicate would come within a retry delay

    assert sorted(delivered) == [b"event 0", b"event 1", b"event 2"]
    tries = [attempts(server, bin_id, seq)[::-1] for seq in seqs]  # oldest first
    assert sum(len(t) for t in tries) == 3 + 6
    for history in tries:
        assert [a["try"] for a in history] == list(range(1, len(history) + 1))
        *failed, last = history
        assert last["response"]["status"] == 204 and last["retry_at"] is None
        for a, b in zip(failed, history[1:], strict=True):
            assert a["response"]["status"] == 503
            assert a["retry_at"] is not None
            assert b["started_at"] >= a["retry_at"]  # not sent again before it was due
    longest = max(tries, key=len)
    if len(longest) >= 3:  # the delay doubles: 1 s, then 2 s
        gaps = [_seconds(a["retry_at"]) - _seconds(a["finished_at"]) for a in longest[:2]]
        assert 1 <= gaps[0] < 2 <= gaps[1]


def _seconds(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_forwards_pending_at_a_restart_are_sent_by_the_next_server(tmp_path):
    port = free_port()
    first = Gunicorn(tmp_path, ALLOW).start()
    try:
        bin_id = forwarding_bin(first, f"http://127.0.0.1:{port}/hook")
        seqs = [send(first, bin_id, f"while down {i}".encode()) for i in range(5)]
        # Nothing listens on the port: each first try fails and a retry waits in the table.
        for seq in seqs:
            wait_for(lambda seq=seq: retry_pending(first, bin_id, seq), what="a retry pending")
    finally:
        first.stop()
    with Recorder("127.0.0.1", port=port) as target:
        second = Gunicorn(tmp_path, {**ALLOW, "DATABASE_URL": first.env["DATABASE_URL"]})
        second.auth = first.auth
        with second:
            wait_for(lambda: len(target.requests) >= 5, what="the pending forwards")
            time.sleep(1.5)
            for seq in seqs:
                last = wait_for(lambda seq=seq: (a := attempts(second, bin_id, seq)[0])["state"]
                                == "done" and a, what="the outcome")  # fmt: skip
                assert last["response"]["status"] == 200
    assert sorted(r.body for r in target.requests) == [f"while down {i}".encode() for i in range(5)]


@pytest.mark.parametrize(
    "path",
    ["/h/{other}", "/h/{own}/deeper?x=1", "/%68/{other}", "/x/../h/{other}", "//h/{other}"],
)
def test_a_bin_cannot_forward_to_this_servers_capture_urls(server, path):
    own = server.create_bin()["id"]
    other = server.create_bin()["id"]
    for host in ("127.0.0.1", "localhost"):
        url = f"http://{host}:{server.port}" + path.format(own=own, other=other)

        r = requests.patch(
            f"{server.url}/api/v1/bins/{own}", json={"forward_to": [url]}, auth=server.auth,
            timeout=10,
        )  # fmt: skip

        assert r.status_code == 422, (url, r.text)
        assert r.json()["error"] == "forward_loop"
        assert "loop" in r.json()["message"]


def test_a_forbidden_target_is_refused_when_saved(server):
    bin_id = server.create_bin()["id"]

    r = requests.patch(
        f"{server.url}/api/v1/bins/{bin_id}",
        json={"forward_to": ["http://169.254.169.254/latest/"]},
        auth=server.auth,
        timeout=10,
    )

    assert r.status_code == 422
    assert r.json()["error"] == "target_forbidden"
    assert "HOOKSCOPE_OUTBOUND_ALLOW" in r.json()["message"]


@pytest.mark.parametrize(
    "value",
    [["ftp://x.example/"], ["http://a.example/"] * 2, "http://a.example/", [1], ["x"] * 6],
)
def test_bad_targets_are_refused_with_what_to_fix(server, value):
    bin_id = server.create_bin()["id"]

    r = requests.patch(
        f"{server.url}/api/v1/bins/{bin_id}", json={"forward_to": value}, auth=server.auth,
        timeout=10,
    )  # fmt: skip

    assert r.status_code == 400, r.text
    assert r.json()["error"] == "bad_forward_to"
