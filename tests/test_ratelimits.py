"""Floods: per-address and per-bin capture limits and a bin-creation limit answer 429."""

from __future__ import annotations

import logging

import pytest
import requests
from flask_migrate import upgrade
from harness import Gunicorn, csrf_token

from app import config, create_app
from app.domain.senders import sender_key


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
    assert settings["HOOKSCOPE_RATE_LIMIT_PER_ADDRESS"] == "600/minute"
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
