"""Fixed bins: declared by the operator, present after every start, with their own read keys."""

from __future__ import annotations

import pytest
import requests
from harness import Gunicorn

from app import config

KEY = "ci-pipeline-read-key-0123456789"


def test_fixed_bins_exist_after_every_start_and_survive_deletion(tmp_path):
    bins_file = tmp_path / "bins.toml"
    bins_file.write_text(
        '[[bin]]\nid = "github-staging"\nread_key = "' + KEY + '"\nname = "GitHub staging"\n'
    )
    env = {"HOOKSCOPE_BINS_FILE": str(bins_file), "HOOKSCOPE_FIXED_BINS": "public-demo"}
    server = Gunicorn(tmp_path, env=env)
    auth = {"Authorization": f"Bearer {KEY}"}
    api = f"{server.url}/api/v1/bins/github-staging"
    with server:
        assert requests.post(f"{server.url}/h/github-staging/push", data=b"1", timeout=10).ok
        shown = requests.get(api, headers=auth, timeout=10).json()
        assert (shown["name"], shown["fixed"], shown["expires_at"]) == (
            "GitHub staging",
            True,
            None,
        )
        assert requests.get(api, timeout=10).status_code == 404  # private without its key
        # A fixed bin without a key is public: anyone may read it.
        assert requests.get(f"{server.url}/api/v1/bins/public-demo", timeout=10).ok
        assert requests.delete(api, headers=auth, timeout=10).status_code == 204
    with server:
        # Deleted, then declared again by the next start: back, empty, same key.
        shown = requests.get(api, headers=auth, timeout=10).json()
        assert shown["request_count"] == 0
        assert requests.post(f"{server.url}/h/github-staging", data=b"2", timeout=10).ok
    with server:
        page = requests.get(f"{api}/requests", headers=auth, timeout=10).json()
        assert [r["seq"] for r in page["requests"]] == [1]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"HOOKSCOPE_FIXED_BINS": "bad id!"}, "fixed bin id"),
        ({"HOOKSCOPE_FIXED_BINS": "ok:short"}, "read_key must be 16+"),
        ({"HOOKSCOPE_BINS_FILE": "/nonexistent/bins.toml"}, "HOOKSCOPE_BINS_FILE"),
    ],
)
def test_bad_declarations_fail_at_start(tmp_path, env, named):
    with pytest.raises(config.ConfigError, match=named):
        config.from_environment(str(tmp_path), env=env)


def test_a_malformed_bins_file_names_itself(tmp_path):
    bad = tmp_path / "bins.toml"
    bad.write_text("[[bin]]\nname = 'no id'\n")
    with pytest.raises(config.ConfigError, match="needs an id"):
        config.from_environment(str(tmp_path), env={"HOOKSCOPE_BINS_FILE": str(bad)})
