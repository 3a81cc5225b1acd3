"""Floods: per-address and per-bin capture limits and a bin-creation limit answer 429."""

from __future__ import annotations

import pytest
import requests
from flask_migrate import upgrade
from harness import Gunicorn, csrf_token

from app import config, create_app


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
