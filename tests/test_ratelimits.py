"""Floods: per-address and per-bin capture limits and a bin-creation limit answer 429.

The capture limits are token buckets: a provider's burst is taken whole, a flood is held to the
rate after it; with Redis every process takes from the same buckets."""

from __future__ import annotations

import logging
import os
import time

import pytest
import requests
from engines import scaleout_unavailable
from flask_migrate import upgrade
from harness import Gunicorn, csrf_token, database_url_for, drop_postgres_database

from app import config, create_app
from app.domain.senders import sender_key
from app.ingest.tally import tally_of


@pytest.fixture
def limited(tmp_path):
    """An app with small limits: 3 captures per address, 5 per bin, 2 bins per address."""
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'limited.db'}",
            "HOOKSCOPE_RATE_LIMIT_PER_ADDRESS": "3/minute",
            "HOOKSCOPE_RATE_LIMIT_PER_BIN": "5/minute",
            "HOOKSCOPE_RATE_LIMIT_CREATE": "2/hour",
        }
    )
    with app.app_context():
        upgrade()
    return app


def from_address(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_a_flooding_address_gets_429_and_nothing_stored(limited):
    sender = from_address(limited, "198.51.100.1")
    bin_ = sender.post("/api/v1/bins").json
    answers = [sender.post(f"/h/{bin_['id']}", data=b"x") for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    refused = answers[3]
    assert int(refused.headers["Retry-After"]) > 0
    assert "HOOKSCOPE_RATE_LIMIT_PER_ADDRESS" in refused.text
    assert "nothing was stored" in refused.text
    owner = {"Authorization": f"Bearer {bin_['read_key']}"}
    assert sender.get(f"/api/v1/bins/{bin_['id']}", headers=owner).json["last_seq"] == 3


def test_a_flooded_bin_gets_429_whoever_sends(limited):
    bin_ = from_address(limited, "198.51.100.9").post("/api/v1/bins").json
    answers = [from_address(limited, f"203.0.113.{i}").post(f"/h/{bin_['id']}") for i in range(7)]
    assert [a.status_code for a in answers] == [200] * 5 + [429] * 2
    assert "HOOKSCOPE_RATE_LIMIT_PER_BIN" in answers[-1].text
    # Another bin is not affected.
    other = from_address(limited, "198.51.100.10").post("/api/v1/bins").json
    assert from_address(limited, "203.0.113.99").post(f"/h/{other['id']}").status_code == 200


def test_bin_creation_is_limited_per_address(limited):
    browser = from_address(limited, "198.51.100.2")
    browser.environ_base["HTTP_X_CSRFTOKEN"] = csrf_token(browser)
    assert browser.post("/api/v1/bins").status_code == 201
    assert browser.post("/bins").status_code == 303
    refused = browser.post("/api/v1/bins")
    assert refused.status_code == 429
    assert refused.json["error"] == "too_many_requests"
    assert "Retry-After" in refused.headers
    assert from_address(limited, "198.51.100.3").post("/api/v1/bins").status_code == 201


def test_limits_can_be_turned_off_and_bad_values_fail_at_start(tmp_path):
    settings = config.from_environment(str(tmp_path), {"HOOKSCOPE_RATE_LIMIT_PER_BIN": "off"})
    assert settings["HOOKSCOPE_RATE_LIMIT_PER_BIN"] == ""
    assert settings["HOOKSCOPE_RATE_LIMIT_PER_ADDRESS"] == "1200/minute burst 6000"
    with pytest.raises(config.ConfigError, match="HOOKSCOPE_RATE_LIMIT_CREATE"):
        config.from_environment(str(tmp_path), {"HOOKSCOPE_RATE_LIMIT_CREATE": "lots"})


def test_limits_hold_under_gunicorn(tmp_path):
    env = {"HOOKSCOPE_RATE_LIMITS": "true", "HOOKSCOPE_RATE_LIMIT_PER_ADDRESS": "4/minute"}
    with Gunicorn(tmp_path, env=env) as server:
        bin_ = server.create_bin()
        statuses = [
            requests.post(bin_["capture_url"], data=b"x", timeout=10).status_code for _ in range(6)
        ]
    assert statuses == [200] * 4 + [429] * 2
    # The master's app (migrations only) starts no limiter storage: its expiry Timer thread,
    # forked into each worker, died there with a KeyError traceback at every boot.
    assert "Traceback" not in server.log_text()


def send_all(url: str, count: int, threads: int = 8) -> list[int]:
    """Send ``count`` captures over ``threads`` keep-alive connections as fast as they go."""
    from concurrent.futures import ThreadPoolExecutor

    def send(share: int) -> list[int]:
        with requests.Session() as session:
            return [
                session.post(url, data=b'{"id": 1}', timeout=30).status_code for _ in range(share)
            ]

    shares = [count // threads + (i < count % threads) for i in range(threads)]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return [status for statuses in pool.map(send, shares) for status in statuses]


def usage_of(server: Gunicorn, bin_: dict) -> dict:
    url = f"{server.url}/api/v1/bins/{bin_['id']}/usage"
    return requests.get(url, auth=server.auth, timeout=10).json()


def wait_for_usage(server: Gunicorn, bin_: dict, done, timeout: float = 30) -> dict:
    """Read the bin's usage until ``done(usage)``: each process adds its counts every 2 s."""
    deadline = time.monotonic() + timeout
    while True:
        usage = usage_of(server, bin_)
        if done(usage) or time.monotonic() > deadline:
            return usage
        time.sleep(0.2)


def test_a_providers_burst_of_2000_from_one_address_is_taken_whole_by_default(tmp_path):
    """Through a tunnel every delivery comes from 127.0.0.1: the defaults must take the burst."""
    with Gunicorn(tmp_path, env={"HOOKSCOPE_RATE_LIMITS": "true"}) as server:
        bin_ = server.create_bin()
        statuses = send_all(bin_["capture_url"] + "/orders/create", 2000)
        assert statuses.count(200) == 2000, {s: statuses.count(s) for s in set(statuses)}
        described = requests.get(
            f"{server.url}/api/v1/bins/{bin_['id']}", auth=server.auth, timeout=10
        ).json()
        assert described["last_seq"] == 2000
        usage = wait_for_usage(server, bin_, lambda u: u["captured"]["last_hour"] == 2000)
    assert usage["captured"]["last_hour"] == 2000
    assert usage["refused"] == {"last_hour": 0, "last_day": 0, "by_reason": {}}


def test_a_sustained_flood_gets_its_burst_then_only_the_rate(tmp_path):
    env = {
        "HOOKSCOPE_RATE_LIMITS": "true",
        "HOOKSCOPE_RATE_LIMIT_PER_BIN": "600/minute burst 20",  # 10 a second after 20 at once
        "HOOKSCOPE_RATE_LIMIT_PER_ADDRESS": "off",
    }
    with Gunicorn(tmp_path, env=env) as server:
        bin_ = server.create_bin()
        url = bin_["capture_url"]
        statuses: list[int] = []
        refusals: list[requests.Response] = []
        started = time.monotonic()
        # Flood for at least two seconds (what is asserted is counts, bounded by the time taken).
        while time.monotonic() - started < 2 or len(statuses) < 100:
            with requests.Session() as session:
                for _ in range(20):
                    answer = session.post(url, data=b"x", timeout=30)
                    statuses.append(answer.status_code)
                    if answer.status_code == 429:
                        refusals.append(answer)
        elapsed = time.monotonic() - started
    accepted = statuses.count(200)
    assert set(statuses) == {200, 429}
    assert statuses[:20] == [200] * 20  # the burst, taken whole
    # Then the rate: never more than it refilled while the flood went on; but it did refill.
    assert 20 < accepted <= 20 + 10 * elapsed + 1, (accepted, elapsed)
    assert statuses.count(429) >= len(statuses) - accepted
    refused = refusals[-1]
    assert "HOOKSCOPE_RATE_LIMIT_PER_BIN" in refused.text and "nothing was stored" in refused.text
    assert int(refused.headers["Retry-After"]) >= 1


REDIS = os.environ.get("HOOKSCOPE_TEST_REDIS_URL")


@pytest.fixture
def two_processes(tmp_path):
    """Two gunicorn masters on one database and one Redis, limits on."""
    if not REDIS:
        scaleout_unavailable("needs HOOKSCOPE_TEST_REDIS_URL")
    database = database_url_for(tmp_path)
    env = {
        "DATABASE_URL": database,
        "REDIS_URL": REDIS,
        "HOOKSCOPE_RATE_LIMITS": "true",
        "HOOKSCOPE_RATE_LIMIT_PER_BIN": "1/hour burst 30",
        "HOOKSCOPE_RATE_LIMIT_PER_ADDRESS": "off",
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = Gunicorn(tmp_path / "a", env=env)
    b = Gunicorn(tmp_path / "b", env=env)
    try:
        a.start()  # one after the other: the first creates the schema
        b.start()
        yield a, b
    finally:
        a.stop()
        b.stop()
        if database.startswith("postgresql"):
            drop_postgres_database(database)


def test_redis_makes_every_process_count_against_the_same_limits(two_processes):
    a, b = two_processes
    bin_ = a.create_bin()
    b.auth.keys.update(a.auth.keys)
    by_server = {a.url: [], b.url: []}
    for i in range(60):
        server = (a, b)[i % 2]
        answer = requests.post(f"{server.url}/h/{bin_['id']}", data=b"x", timeout=10)
        by_server[server.url].append(answer.status_code)
    statuses = by_server[a.url] + by_server[b.url]
    # One bucket of 30 for the bin, wherever its captures land; each process alone would take 30.
    assert statuses.count(200) == 30
    assert statuses.count(429) == 30
    assert 200 in by_server[a.url] and 200 in by_server[b.url]
    # Both processes' counts reach the bin's usage, whichever one is asked.
    usage = wait_for_usage(
        b, bin_, lambda u: u["refused"]["last_hour"] == 30 and u["captured"]["last_hour"] == 30
    )
    assert usage["refused"]["by_reason"]["rate_limit_bin"]["last_hour"] == 30
    assert usage["captured"]["last_hour"] == 30


@pytest.mark.parametrize(
    ("address", "counted_as"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::1", "2001:db8:1:2::/64"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("fe80::1%eth0", "fe80::/64"),
        ("", "-"),
        (None, "-"),
    ],
)
def test_senders_are_counted_by_address_and_ipv6_by_its_64(address, counted_as):
    assert sender_key(address) == counted_as


def test_one_ipv6_64_is_one_sender(limited):
    bin_ = from_address(limited, "198.51.100.20").post("/api/v1/bins").json
    spread = [from_address(limited, f"2001:db8:1:2::{n}") for n in range(1, 6)]
    answers = [sender.post(f"/h/{bin_['id']}") for sender in spread]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert "an IPv6 /64" in answers[-1].text
    # The next /64 over is someone else.
    assert from_address(limited, "2001:db8:1:3::1").post(f"/h/{bin_['id']}").status_code == 200
    # Bin creation counts the same way.
    makers = [from_address(limited, f"2001:db8:9:9::{n}") for n in range(1, 4)]
    assert [m.post("/api/v1/bins").status_code for m in makers] == [201, 201, 429]


@pytest.fixture
def ceiling(tmp_path):
    """An app whose captures are limited only by a server-wide ceiling of 4 a minute."""
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'ceiling.db'}",
            "HOOKSCOPE_RATE_LIMIT_PER_ADDRESS": "",
            "HOOKSCOPE_RATE_LIMIT_PER_BIN": "",
            "HOOKSCOPE_RATE_LIMIT_GLOBAL": "4/minute",
        }
    )
    with app.app_context():
        upgrade()
    return app


def test_a_crowd_of_senders_meets_the_global_ceiling(ceiling):
    bins_ = [from_address(ceiling, f"192.0.2.{n}").post("/api/v1/bins").json for n in (1, 2)]
    answers = [
        from_address(ceiling, f"203.0.113.{n}").post(f"/h/{bins_[n % 2]['id']}") for n in range(6)
    ]
    assert [a.status_code for a in answers] == [200] * 4 + [429] * 2
    assert "HOOKSCOPE_RATE_LIMIT_GLOBAL" in answers[-1].text
    assert "from all senders together" in answers[-1].text
    assert int(answers[-1].headers["Retry-After"]) > 0


def test_probes_for_bins_that_do_not_exist_run_out_of_the_senders_budget(limited, caplog):
    caplog.set_level(logging.INFO, logger="hookscope.capture")
    prober = from_address(limited, "198.51.100.66")
    guesses = [prober.post(f"/h/guess{n:021d}") for n in range(5)]
    assert [g.status_code for g in guesses] == [404, 404, 404, 429, 429]
    assert "HOOKSCOPE_RATE_LIMIT_PER_ADDRESS" in guesses[-1].text
    logged = [r.getMessage() for r in caplog.records if r.name == "hookscope.capture"]
    assert [line.split("status=")[1].split()[0] for line in logged] == ["404"] * 3 + ["429"] * 2
    # Counted by the process (no bin to count them for), each refusal by its reason.
    counted = tally_of(limited).process
    assert (counted["no_such_bin"], counted["rate_limit_unknown_bin"]) == (3, 2)
    # An honest sender is not affected.
    bin_ = from_address(limited, "198.51.100.67").post("/api/v1/bins").json
    assert from_address(limited, "198.51.100.67").post(f"/h/{bin_['id']}").status_code == 200


def test_api_and_page_404s_are_counted_per_sender(tmp_path):
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'probes.db'}",
            "HOOKSCOPE_RATE_LIMIT_NOT_FOUND": "3/minute",
        }
    )
    with app.app_context():
        upgrade()
    owner = from_address(app, "198.51.100.70")
    mine = owner.post("/api/v1/bins").json
    auth = {"Authorization": f"Bearer {mine['read_key']}"}
    # Using your own bin is never a probe.
    for _ in range(6):
        assert owner.get(f"/api/v1/bins/{mine['id']}/requests", headers=auth).status_code == 200

    prober = from_address(app, "198.51.100.71")
    wrong = {"Authorization": "Bearer " + "w" * 32}
    answers = [
        prober.get(f"/api/v1/bins/{mine['id']}", headers=wrong),
        prober.get("/api/v1/bins/nosuchbin00000000000000000"),
        prober.get(f"/bins/{mine['id']}"),  # the locked page
        prober.get(f"/api/v1/bins/{mine['id']}/requests", headers=wrong),
    ]
    assert [a.status_code for a in answers] == [404, 404, 404, 429]
    assert answers[-1].json["error"] == "too_many_requests"
    assert "HOOKSCOPE_RATE_LIMIT_NOT_FOUND" in answers[-1].json["message"]
    assert owner.get(f"/api/v1/bins/{mine['id']}", headers=auth).status_code == 200
