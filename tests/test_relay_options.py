"""``hookscope forward``'s choices: routing, retries, where it starts, one relay per target,
and the key, against a real gunicorn, as a process of its own."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
import requests
from harness import free_port
from http_recorder import Received, Recorder, ok
from relaying import HOOKSCOPE, WAIT, Cli, client_env, wait_until

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def relay(tmp_path):
    runs: list[Cli] = []

    def start(*args: str, key: str | None = None, command: str = "forward") -> Cli:
        extra = {"HOOKSCOPE_KEY": key} if key else {}
        run = Cli([command, *args], client_env(tmp_path / "state", **extra), tmp_path)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.stop(signal.SIGKILL)


def post(server, bin_id: str, path: str, n: int, headers: dict | None = None) -> int:
    response = requests.post(
        f"{server.url}/h/{bin_id}{path}",
        data=json.dumps({"n": n}).encode(),
        headers=headers or {},
        timeout=30,
    )
    assert response.status_code == 200
    return int(response.headers["X-Hookscope-Seq"])


def numbers(received: list[Received]) -> list[int]:
    return [json.loads(r.body)["n"] for r in received]


def test_routes_send_each_capture_to_the_first_matching_target(server, relay):
    bin_ = server.create_bin()
    with Recorder() as stripe_, Recorder() as pushes, Recorder() as shop, Recorder() as rest:
        run = relay(
            f"{server.url}/h/{bin_['id']}",
            "--to", rest.url,
            "--route", f"path:/stripe/*={stripe_.url}/in",
            "--route", f"header:X-GitHub-Event=push={pushes.url}",
            "--route", f"event:shopify:orders/*={shop.url}",
            "--json",
            key=bin_["read_key"],
        )  # fmt: skip
        post(server, bin_["id"], "/stripe/events", 1)
        post(server, bin_["id"], "/github", 2, {"X-GitHub-Event": "push"})
        post(server, bin_["id"], "/github", 3, {"X-GitHub-Event": "issues"})
        post(server, bin_["id"], "/shop", 4, {"X-Shopify-Topic": "orders/create"})
        post(server, bin_["id"], "/other", 5)
        post(server, bin_["id"], "/stripe/x", 6, {"X-GitHub-Event": "push"})
        run.wait_for(lambda r: len(r.delivered()) == 6, "six deliveries")
        assert numbers(stripe_.requests) == [1, 6]
        assert [r.target for r in stripe_.requests] == [b"/in/stripe/events", b"/in/stripe/x"]
        assert numbers(pushes.requests) == [2]
        assert numbers(shop.requests) == [4]
        assert numbers(rest.requests) == [3, 5]
    targets = {r["seq"]: r["target"] for r in run.records}
    assert targets[1] == f"{stripe_.url}/in" and targets[5] == rest.url


def test_a_capture_no_route_takes_is_reported_and_not_sent(server, relay):
    bin_ = server.create_bin()
    with Recorder() as target:
        run = relay(f"{server.url}/h/{bin_['id']}", "--route", f"path:/a/*={target.url}",
                    key=bin_["read_key"])  # fmt: skip
        post(server, bin_["id"], "/b", 1)
        post(server, bin_["id"], "/a/1", 2)
        run.wait_for(lambda r: any(line.startswith("#2 ") for line in r.out), "#2's line")
    assert numbers(target.requests) == [2]
    assert run.out[0] == "#1 POST /b -> no route matched, not sent"
    assert run.out[1].startswith("#2 POST /a/1 -> 200 in ")


def test_a_target_answering_503_is_retried_with_backoff_and_holds_the_rest(server, relay):
    attempts: list[int] = []

    def respond(request: Received):
        n = json.loads(request.body)["n"]
        attempts.append(n)
        if n == 1 and attempts.count(1) <= 2:
            return 503, [("Content-Type", "text/plain")], b"restarting"
        return ok(request)

    bin_ = server.create_bin()
    with Recorder("127.0.0.1", respond) as target:
        run = relay(f"{server.url}/h/{bin_['id']}", "--to", target.url, "--json",
                    key=bin_["read_key"])  # fmt: skip
        post(server, bin_["id"], "/", 1)
        post(server, bin_["id"], "/", 2)
        run.wait_for(lambda r: len(r.delivered()) == 2, "both delivered")
    assert attempts == [1, 1, 1, 2]
    first = [(r["outcome"], r["status"], r["attempt"], r["retry_in_s"]) for r in run.records[:3]]
    assert first == [
        ("retrying", 503, 1, 0.5),
        ("retrying", 503, 2, 1.0),
        ("delivered", 200, 3, None),
    ]


def test_a_target_that_is_down_gets_everything_once_it_is_up(server, relay):
    port = free_port()
    bin_ = server.create_bin()
    run = relay(f"{server.url}/h/{bin_['id']}", "--to", f"http://127.0.0.1:{port}/hook",
                key=bin_["read_key"])  # fmt: skip
    post(server, bin_["id"], "/", 1)
    post(server, bin_["id"], "/", 2)
    run.wait_for(lambda r: any("connect_failed" in line for line in r.out), "a failed attempt")
    assert run.out[0].startswith(f"#1 POST / -> connect_failed: 127.0.0.1 port {port}: ")
    assert "; retrying in 0.5 s (attempt 1, " in run.out[0]
    with Recorder("127.0.0.1", port=port) as target:
        wait_until(lambda: len(target.requests) == 2, "both captures at the target")
        run.wait_for(lambda r: r.out[-1].startswith("#2 POST / -> 200"), "#2's line")
    assert numbers(target.requests) == [1, 2]


@pytest.mark.parametrize("strict", [False, True], ids=["any-answer", "require-2xx"])
def test_a_500_counts_as_delivered_unless_2xx_is_required(server, relay, strict):
    answers = iter([500])

    def respond(request: Received):
        status = next(answers, 200)
        return status, [("Content-Type", "text/plain")], b"x"

    bin_ = server.create_bin()
    with Recorder("127.0.0.1", respond) as target:
        flags = ["--require-2xx"] if strict else []
        run = relay(f"{server.url}/h/{bin_['id']}", "--to", target.url, "--json", *flags,
                    key=bin_["read_key"])  # fmt: skip
        post(server, bin_["id"], "/", 1)
        run.wait_for(lambda r: r.delivered() == [1], "#1 delivered")
    outcomes = [(r["outcome"], r["status"]) for r in run.records]
    if strict:
        assert outcomes == [("retrying", 500), ("delivered", 200)]
    else:
        assert outcomes == [("delivered", 500)]


def test_it_resumes_after_the_last_delivery_and_since_and_only_new_start_elsewhere(server, relay):
    bin_ = server.create_bin()
    url, key = f"{server.url}/h/{bin_['id']}", bin_["read_key"]
    for n in (1, 2, 3):
        post(server, bin_["id"], "/", n)
    with Recorder() as target, Recorder() as other:
        first = relay(url, "--to", target.url, "--json", key=key)
        first.wait_for(lambda r: r.delivered() == [1, 2, 3], "the stored captures")
        assert first.stop() == 0  # SIGTERM: a clean stop
        post(server, bin_["id"], "/", 4)
        post(server, bin_["id"], "/", 5)
        second = relay(url, "--to", target.url, "--json", key=key)
        second.wait_for(lambda r: r.delivered() == [4, 5], "only what came meanwhile")
        assert any("resuming after #3" in line for line in second.err)
        second.stop()
        again = relay(url, "--to", target.url, "--json", "--since", "2", key=key)
        again.wait_for(lambda r: r.delivered() == [2, 3, 4, 5], "from #2")
        again.stop()
        fresh = relay(url, "--to", other.url, "--only-new", "--json", key=key)
        fresh.wait_for(lambda r: "hookscope: live stream: on" in r.err, "the stream")
        post(server, bin_["id"], "/", 6)
        fresh.wait_for(lambda r: r.delivered() == [6], "only the new capture")
        assert numbers(target.requests) == [1, 2, 3, 4, 5, 2, 3, 4, 5]
        assert numbers(other.requests) == [6]


def test_a_second_relay_to_the_same_target_is_refused(server, relay):
    bin_ = server.create_bin()
    with Recorder() as target:
        args = (f"{server.url}/h/{bin_['id']}", "--to", target.url)
        first = relay(*args, key=bin_["read_key"])
        first.wait_for(lambda r: any("relaying" in line for line in r.err), "the first to start")
        second = relay(*args, key=bin_["read_key"])
        assert second.finish() == 1
    said = f"is already relaying this bin to {target.url}"
    assert any("hookscope forward (pid " in line and said in line for line in second.err)


def test_a_wrong_key_stops_it_and_no_key_is_ever_printed(server, relay):
    bin_ = server.create_bin()
    wrong = "not-the-key-" + bin_["read_key"][:8]
    run = relay(f"{server.url}/h/{bin_['id']}", "--to", "http://127.0.0.1:9/", key=wrong)
    assert run.finish() == 1
    assert "no such bin, or this key does not open it" in "\n".join(run.err)
    assert wrong not in run.transcript()


def test_a_share_link_carries_the_key_and_no_server_setting_is_needed(server, relay, tmp_path):
    """A machine with the client only: the server's variables set to nonsense, which would stop
    the app from being built, and a working folder where nothing may be created."""
    bin_ = server.create_bin()
    share = f"{server.url}/bins/{bin_['id']}#key={bin_['read_key']}"
    here = tmp_path / "empty"
    here.mkdir()
    env = client_env(
        tmp_path / "state", DATABASE_URL="nonsense://", HOOKSCOPE_MAX_BODY_BYTES="lots"
    )
    with Recorder() as target:
        run = Cli(["forward", share, "--to", target.url], env, here)
        try:
            run.wait_for(lambda r: "hookscope: live stream: on" in r.err, "the stream")
            post(server, bin_["id"], "/x", 1)
            wait_until(lambda: len(target.requests) == 1, "the capture at the target")
            run.wait_for(lambda r: len(r.out) == 1, "its line")
        finally:
            run.stop()
    assert bin_["read_key"] not in run.transcript()
    assert f"relaying {server.url}/bins/{bin_['id']} to {target.url}" in run.transcript()
    assert list(here.iterdir()) == []


def test_without_the_client_extra_it_says_how_to_install_it(tmp_path):
    missing = (
        "import sys; sys.modules['websocket'] = None; from app.cli import main; "
        "main(['forward', 'http://127.0.0.1:9/h/abc', '--to', 'http://127.0.0.1:9/'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", missing],
        env=client_env(tmp_path / "state"),
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert done.returncode == 1
    assert "pipx install 'hookscope[client]'" in done.stderr


def test_bad_routes_and_targets_are_refused_before_anything_runs(tmp_path):
    for args, said in (
        (["--route", "path:/x"], "has no target URL"),
        (["--route", "query:a=http://127.0.0.1:9/"], "must start with path:, header: or event:"),
        (["--to", "ftp://127.0.0.1/"], "only http:// and https://"),
        ([], "say where to send captures"),
        (["--to", "http://127.0.0.1:9/", "--since", "3", "--only-new"], "cannot go together"),
    ):
        done = subprocess.run(
            [HOOKSCOPE, "forward", "http://127.0.0.1:9/h/abc", *args],
            env=client_env(tmp_path / "state"),
            capture_output=True,
            text=True,
            timeout=WAIT,
        )
        assert done.returncode == 2, (args, done.stderr)
        assert said in done.stderr, (args, done.stderr)


def test_captures_the_bin_refused_are_not_relayed_unless_asked(server, relay):
    """Behind ingest protection, a sender without credentials must not reach your code."""
    bin_ = server.create_bin()
    token = "a-long-ingest-token-for-the-test"
    changed = requests.patch(
        f"{server.url}/api/v1/bins/{bin_['id']}",
        json={"ingest_auth": {"type": "bearer", "token": token}},
        auth=server.auth,
        timeout=30,
    )
    assert changed.status_code == 200, changed.text
    stranger = requests.post(f"{server.url}/h/{bin_['id']}", data=b'{"n": 1}', timeout=30)
    assert stranger.status_code == 401
    post(server, bin_["id"], "/", 2, {"Authorization": f"Bearer {token}"})
    with Recorder() as target, Recorder() as everything:
        run = relay(f"{server.url}/h/{bin_['id']}", "--to", target.url, key=bin_["read_key"])
        run.wait_for(lambda r: len(r.out) == 2, "two lines")
        anyway = relay(f"{server.url}/h/{bin_['id']}", "--to", everything.url,
                       "--include-rejected", key=bin_["read_key"])  # fmt: skip
        anyway.wait_for(lambda r: len(r.out) == 2, "two lines")
    assert numbers(target.requests) == [2]
    assert run.out[0] == (
        "#1 POST / -> not sent: the bin refused it (no valid credentials; --include-rejected "
        "sends it)"
    )
    assert numbers(everything.requests) == [1, 2]
