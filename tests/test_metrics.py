"""GET /metrics: off by default; Prometheus text with every worker's counts; the Bearer token."""

from __future__ import annotations

import os
import re
import signal
import threading

import pytest
import requests
import socketio
from engines import wait_for
from flask_migrate import upgrade
from harness import Gunicorn, database_url_for
from prometheus_client.parser import text_string_to_metric_families

from app import create_app
from app.extensions import db

TOKEN = "a-long-metrics-token-for-tests"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, by name and labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(server: Gunicorn) -> Samples:
    response = requests.get(server.url + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return parse(response.text)


def test_metrics_are_off_unless_asked_for(client):
    assert client.get("/metrics").status_code == 404


@pytest.fixture
def metrics_app(tmp_path):
    """The app in-process with metrics on and a token."""
    database = database_url_for(tmp_path)
    app = create_app(
        {
            "SECRET_KEY": "test",
            "SQLALCHEMY_DATABASE_URI": database,
            "RATELIMIT_ENABLED": False,
            "HOOKSCOPE_METRICS": True,
            "HOOKSCOPE_METRICS_TOKEN": TOKEN,
        }
    )
    with app.app_context():
        upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}"],
)
def test_the_token_is_required_when_set(metrics_app, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    refused = metrics_app.test_client().get("/metrics", headers=headers)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert "HOOKSCOPE_METRICS_TOKEN" in refused.text
    assert "hookscope_captures_total" not in refused.text


def test_the_right_token_gets_the_metrics(metrics_app):
    client = metrics_app.test_client()
    made = client.post("/api/v1/bins").json
    assert client.post(f"/h/{made['id']}", data=b"12345").status_code == 200
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    samples = parse(response.text)
    assert value(samples, "hookscope_captures_total", status="200") >= 1
    assert value(samples, "hookscope_capture_received_bytes_total") >= 5


def capture_pids(server: Gunicorn) -> set[str]:
    return set(re.findall(r"\[(\d+)\] \[INFO\] capture ", server.log_text()))


def test_counts_from_every_worker_match_what_was_sent(tmp_path):
    env = {
        "HOOKSCOPE_METRICS": "true",
        "HOOKSCOPE_WORKERS": "2",
        "HOOKSCOPE_MAX_BODY_BYTES": "1000",
    }
    with Gunicorn(tmp_path, env=env) as server:
        bin_ = server.create_bin()
        stored, received = 0, 0
        # A new connection each: the kernel hands them to either worker. Go on until both have
        # stored captures, so that the figures below are the sum of two processes' counts.
        while stored < 10 or len(capture_pids(server)) < 2:
            assert stored < 500, "one worker took every connection"
            body = b"x" * (stored % 40 + 1)
            r = requests.post(bin_["capture_url"], data=body, headers={"Connection": "close"})
            assert r.status_code == 200
            stored, received = stored + 1, received + len(body)
        too_large = [requests.post(bin_["capture_url"], data=b"y" * 2000) for _ in range(3)]
        assert [r.status_code for r in too_large] == [413] * 3
        missing = [requests.post(f"{server.url}/h/no-such-bin", data=b"z") for _ in range(2)]
        assert [r.status_code for r in missing] == [404] * 2

        answered = stored + 5

        def counted() -> Samples | None:
            samples = scrape(server)
            by_status = [
                value(samples, "hookscope_captures_total", status=status)
                for status in ("200", "413", "404")
            ]
            done = value(samples, "hookscope_capture_duration_seconds_count") == answered
            return samples if by_status == [stored, 3, 2] and done else None

        # The worker answering the scrape counts up to now; the other within a second.
        samples = wait_for(counted, 15, "both workers' counts")
        # Refused bodies over the limit are not read: only the stored ones' bytes.
        assert value(samples, "hookscope_capture_received_bytes_total") == received
        assert value(samples, "hookscope_refusals_total", reason="body_too_large") == 3
        assert value(samples, "hookscope_refusals_total", reason="no_such_bin") == 2
        assert value(samples, "hookscope_capture_duration_seconds_count") == answered
        assert value(samples, "hookscope_capture_duration_seconds_bucket", le="+Inf") == answered
        assert value(samples, "hookscope_capture_duration_seconds_sum") > 0
        # Every stored capture went through one group-commit batch.
        assert value(samples, "hookscope_batch_size_sum") == stored
        assert 1 <= value(samples, "hookscope_batch_size_count") <= stored

        # A worker killed outright: what it counted (and flushed) is still counted.
        os.kill(int(sorted(capture_pids(server))[0]), signal.SIGKILL)
        wait_for(lambda: server.log_text().count("] serving") >= 3, 30, "a new worker")
        again = scrape(server)
        assert value(again, "hookscope_captures_total", status="200") == stored
    assert "Traceback" not in server.log_text()


class Watcher:
    def __init__(self, server: Gunicorn, bin_: dict) -> None:
        self.seen = 0
        self.lock = threading.Lock()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("captured", self.captured)
        self.sio.connect(server.url, transports=["websocket"], wait_timeout=10)
        request = {"bin": bin_["id"], "after": None, "key": bin_["read_key"]}
        assert self.sio.call("watch", request, timeout=10)["ok"] is True

    def captured(self, _summary: dict) -> None:
        with self.lock:
            self.seen += 1


def test_live_watchers_and_events_sent_and_a_dead_workers_watchers_gone(tmp_path):
    with Gunicorn(tmp_path, env={"HOOKSCOPE_METRICS": "true"}) as server:
        bin_ = server.create_bin()
        watcher = Watcher(server, bin_)
        try:
            for i in range(5):
                assert requests.post(bin_["capture_url"], data=b"%d" % i).status_code == 200
            wait_for(lambda: watcher.seen == 5, 15, "the watcher's events")
            samples = scrape(server)
            assert value(samples, "hookscope_live_watchers") == 1
            assert value(samples, "hookscope_live_events_sent_total") == 5

            # The worker dies with the watcher on it: gunicorn's child_exit marks it dead.
            (worker,) = capture_pids(server)
            os.kill(int(worker), signal.SIGKILL)
            wait_for(lambda: server.log_text().count("] serving") >= 2, 30, "a new worker")
            samples = scrape(server)
            assert value(samples, "hookscope_live_watchers") == 0
            assert value(samples, "hookscope_captures_total", status="200") == 5
        finally:
            watcher.sio.disconnect()


def test_a_watcher_that_leaves_is_no_longer_counted(tmp_path):
    with Gunicorn(tmp_path, env={"HOOKSCOPE_METRICS": "true"}) as server:
        bin_ = server.create_bin()
        watchers = [Watcher(server, bin_) for _ in range(3)]
        wait_for(lambda: value(scrape(server), "hookscope_live_watchers") == 3, 15, "3 watching")
        watchers[0].sio.disconnect()
        wait_for(lambda: value(scrape(server), "hookscope_live_watchers") == 2, 15, "2 watching")
        for watcher in watchers[1:]:
            watcher.sio.disconnect()


def test_outbound_attempts_are_counted_by_kind_and_outcome(tmp_path):
    from http_recorder import Recorder

    env = {"HOOKSCOPE_METRICS": "true", "HOOKSCOPE_OUTBOUND_ALLOW": "127.0.0.1/32"}
    with Recorder("127.0.0.1") as target, Gunicorn(tmp_path, env=env) as server:
        bin_ = server.create_bin()
        patched = requests.patch(
            f"{server.url}/api/v1/bins/{bin_['id']}",
            json={"forward_to": [f"{target.url}/forwarded"]},
            auth=server.auth,
            timeout=10,
        )
        assert patched.status_code == 200
        assert requests.post(bin_["capture_url"], data=b"hello").status_code == 200
        replayed = requests.post(
            f"{server.url}/api/v1/bins/{bin_['id']}/requests/1/replay",
            json={"url": f"{target.url}/replayed"},
            auth=server.auth,
            timeout=30,
        )
        assert replayed.status_code == 200
        nowhere = requests.post(
            f"{server.url}/api/v1/bins/{bin_['id']}/requests/1/replay",
            json={"url": "http://127.0.0.1:9/closed"},  # the discard port: nothing listens
            auth=server.auth,
            timeout=30,
        )
        assert nowhere.status_code == 200 and nowhere.json()["error"] == "connect_failed"

        def counted() -> bool:
            samples = scrape(server)
            return (
                value(samples, "hookscope_outbound_attempts_total", kind="forward", outcome="2xx")
                == 1
                and value(
                    samples, "hookscope_outbound_attempts_total", kind="replay", outcome="2xx"
                )
                == 1
                and value(
                    samples,
                    "hookscope_outbound_attempts_total",
                    kind="replay",
                    outcome="connect_failed",
                )
                == 1
            )

        wait_for(counted, 30, "the forward and the replays counted")
