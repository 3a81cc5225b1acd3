"""Configuration from the environment: defaults, clear errors, a secret key kept once."""

from __future__ import annotations

import pytest

from app import config


def test_defaults(tmp_path):
    settings = config.from_environment(str(tmp_path), env={})
    assert settings["HOOKSCOPE_MAX_BODY_BYTES"] == 10 * 1024 * 1024
    assert settings["HOOKSCOPE_PROXY_COUNT"] == 0
    assert settings["HOOKSCOPE_SEARCH_CHUNK_REQUESTS"] == 50_000
    assert settings["HOOKSCOPE_SEARCH_BUDGET_MS"] == 150
    assert settings["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'hookscope.db'}"


def test_secret_key_is_generated_once_and_kept(tmp_path):
    first = config.from_environment(str(tmp_path), env={})["SECRET_KEY"]
    second = config.from_environment(str(tmp_path), env={})["SECRET_KEY"]
    assert first == second and len(first) == 64
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_secret_key_from_the_environment_wins(tmp_path):
    settings = config.from_environment(str(tmp_path), env={"SECRET_KEY": "from-env"})
    assert settings["SECRET_KEY"] == "from-env"
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@db/hooks", "postgresql+psycopg://u:p@db/hooks"),
        ("postgresql://u:p@db/hooks", "postgresql+psycopg://u:p@db/hooks"),
        ("sqlite:////var/lib/hooks.db", "sqlite:////var/lib/hooks.db"),
    ],
)
def test_database_url(tmp_path, url, expected):
    settings = config.from_environment(str(tmp_path), env={"DATABASE_URL": url})
    assert settings["SQLALCHEMY_DATABASE_URI"] == expected


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"HOOKSCOPE_MAX_BODY_BYTES": "ten"}, "HOOKSCOPE_MAX_BODY_BYTES"),
        ({"HOOKSCOPE_MAX_BODY_BYTES": "0"}, "HOOKSCOPE_MAX_BODY_BYTES"),
        ({"HOOKSCOPE_PROXY_COUNT": "-1"}, "HOOKSCOPE_PROXY_COUNT"),
        ({"HOOKSCOPE_PUBLIC_URL": "hooks.example.com"}, "HOOKSCOPE_PUBLIC_URL"),
        ({"HOOKSCOPE_SEARCH_CHUNK_REQUESTS": "0"}, "HOOKSCOPE_SEARCH_CHUNK_REQUESTS"),
        ({"HOOKSCOPE_SEARCH_BUDGET_MS": "-5"}, "HOOKSCOPE_SEARCH_BUDGET_MS"),
        ({"HOOKSCOPE_OUTBOUND_ALLOW": "127.0.0.1/8"}, "HOOKSCOPE_OUTBOUND_ALLOW.*127.0.0.0/8"),
        ({"HOOKSCOPE_OUTBOUND_ALLOW": "0x7f.1"}, "HOOKSCOPE_OUTBOUND_ALLOW"),
        ({"HOOKSCOPE_OUTBOUND_TIMEOUT_SECONDS": "0"}, "HOOKSCOPE_OUTBOUND_TIMEOUT_SECONDS"),
        ({"HOOKSCOPE_FORWARD_MAX_ATTEMPTS": "50"}, "HOOKSCOPE_FORWARD_MAX_ATTEMPTS"),
    ],
)
def test_a_bad_value_fails_at_start_naming_the_variable(tmp_path, env, named):
    with pytest.raises(config.ConfigError, match=named):
        config.from_environment(str(tmp_path), env=env)


def test_server_settings(tmp_path):
    settings = config.server_settings({"PORT": "9000", "HOOKSCOPE_WORKERS": "2"})
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 9000, 2)
    with pytest.raises(config.ConfigError, match="HOOKSCOPE_WORKERS"):
        config.server_settings({"HOOKSCOPE_WORKERS": "0"})
    with pytest.raises(config.ConfigError, match="PORT"):
        config.server_settings({"PORT": "http"})


def test_proxy_count_decides_whose_address_is_recorded(tmp_path):
    from flask_migrate import upgrade

    from app import create_app

    for proxies, expected in ((0, "127.0.0.1"), (1, "198.51.100.7")):
        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / f'p{proxies}.db'}",
                "HOOKSCOPE_PROXY_COUNT": proxies,
            }
        )
        with app.app_context():
            upgrade()
        client = app.test_client()
        bin_id = client.post("/api/v1/bins").json["id"]
        client.post(f"/h/{bin_id}", headers={"X-Forwarded-For": "198.51.100.7"})
        [summary] = client.get(f"/api/v1/bins/{bin_id}/requests").json["requests"]
        assert summary["remote_addr"] == expected


@pytest.mark.parametrize(
    ("variable", "value", "module", "extra"),
    [
        ("DATABASE_URL", "postgresql://u:p@127.0.0.1/db", "psycopg", "postgres"),
        ("DATABASE_URL", "postgres://u:p@127.0.0.1/db", "psycopg", "postgres"),
        ("REDIS_URL", "redis://127.0.0.1:6379/0", "redis", "redis"),
    ],
)
def test_a_missing_extra_is_named(tmp_path, monkeypatch, variable, value, module, extra):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a)
    )
    with pytest.raises(config.ConfigError) as refused:
        config.from_environment(str(tmp_path), env={variable: value, "SECRET_KEY": "x"})
    assert f"pip install 'hookscope[{extra}]'" in str(refused.value)
    assert variable in str(refused.value)


def test_the_instance_folder(tmp_path, monkeypatch):
    checkout = tmp_path / "checkout"
    (checkout / "app").mkdir(parents=True)
    (checkout / "pyproject.toml").write_text("")
    assert config.instance_path(checkout, env={}) == str(checkout / "instance")
    monkeypatch.chdir(tmp_path)
    assert config.instance_path(tmp_path / "site-packages", env={}) == str(tmp_path / "instance")
    chosen = {"HOOKSCOPE_INSTANCE_PATH": str(tmp_path / "data")}
    assert config.instance_path(checkout, env=chosen) == str(tmp_path / "data")
