"""A capture host of its own (HOOKSCOPE_CAPTURE_HOST): captures there, pages and API elsewhere."""

from __future__ import annotations

import pytest
import requests
from harness import Gunicorn, free_port

from app import config

CAPTURE_HOST = "hooks.test"


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    """A server whose main host is app.test and whose capture host is hooks.test."""
    port = free_port()
    env = {
        "HOOKSCOPE_PUBLIC_URL": f"http://app.test:{port}",
        "HOOKSCOPE_CAPTURE_HOST": CAPTURE_HOST,
    }
    with Gunicorn(tmp_path_factory.mktemp("split"), env, port=port) as running:
        yield running


def on(server, host: str, method: str, path: str, **kwargs) -> requests.Response:
    """Send to the server as if its address were ``host``."""
    headers = {"Host": f"{host}:{server.port}", **kwargs.pop("headers", {})}
    return requests.request(
        method, server.url + path, headers=headers, timeout=10, allow_redirects=False, **kwargs
    )


def created_bin(server) -> dict:
    created = on(server, "app.test", "POST", "/api/v1/bins")
    assert created.status_code == 201
    bin_ = created.json()
    server.auth.keys[bin_["id"]] = bin_["read_key"]
    return bin_


def test_the_capture_url_shown_is_on_the_capture_host(split):
    bin_ = created_bin(split)
    assert bin_["capture_url"] == f"http://{CAPTURE_HOST}/h/{bin_['id']}"
    assert bin_["url"] == f"http://app.test:{split.port}/bins/{bin_['id']}"
    session = requests.Session()
    session.headers["Host"] = f"app.test:{split.port}"
    session.post(split.url + "/api/v1/bins/" + bin_["id"] + "/session", auth=split.auth)
    page = session.get(split.url + f"/bins/{bin_['id']}", timeout=10)
    assert page.status_code == 200
    assert f'value="http://{CAPTURE_HOST}/h/{bin_["id"]}"' in page.text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/bins/{id}"),
        ("POST", "/bins"),
        ("GET", "/api/v1/bins/{id}"),
        ("POST", "/api/v1/bins"),
        ("PATCH", "/api/v1/bins/{id}"),
        ("GET", "/api/v1/bins/{id}/requests"),
        ("GET", "/api/v1/openapi.json"),
        ("GET", "/api/docs"),
        ("GET", "/static/js/bin.js"),
        ("GET", "/socket.io/?EIO=4&transport=polling"),
        ("POST", "/csp-report"),
    ],
)
def test_on_the_capture_host_no_page_or_api_answers(split, method, path):
    bin_ = created_bin(split)
    answer = on(
        split,
        CAPTURE_HOST,
        method,
        path.format(id=bin_["id"]),
        headers={"Authorization": f"Bearer {bin_['read_key']}"},
        json={"name": "changed"} if method != "GET" else None,
    )
    assert answer.status_code == 404
    assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "only takes captures" in answer.text and "HOOKSCOPE_CAPTURE_HOST" in answer.text
    assert "set-cookie" not in {name.lower() for name in answer.headers}
    # Nothing happened: no bin was renamed, no request was captured.
    shown = on(split, "app.test", "GET", f"/api/v1/bins/{bin_['id']}", auth=split.auth).json()
    assert (shown["name"], shown["request_count"]) == ("", 0)


def test_captures_are_taken_on_the_capture_host_only(split):
    bin_ = created_bin(split)
    taken = on(split, CAPTURE_HOST, "POST", f"/h/{bin_['id']}/events", data=b"on the hook host")
    assert (taken.status_code, taken.text) == (200, "ok\n")
    refused = on(split, "app.test", "POST", f"/h/{bin_['id']}/events", data=b"on the app host")
    assert refused.status_code == 404
    assert f"captures are taken at http://{CAPTURE_HOST}/h/" in refused.text
    assert "nothing was stored" in refused.text
    # Any other name for this server is not the capture host either.
    elsewhere = requests.post(split.url + f"/h/{bin_['id']}", data=b"by address", timeout=10)
    assert elsewhere.status_code == 404
    listed = on(
        split, "app.test", "GET", f"/api/v1/bins/{bin_['id']}/requests", auth=split.auth
    ).json()["requests"]
    assert [r["body_size"] for r in listed] == [len(b"on the hook host")]


def test_health_checks_answer_on_both_hosts(split):
    for host in (CAPTURE_HOST, "app.test"):
        assert on(split, host, "GET", "/healthz").status_code == 200


@pytest.mark.parametrize(
    ("value", "public_url", "expected"),
    [
        ("Hooks.Example.com", "", "hooks.example.com"),
        ("hooks.example.com:8443", "https://app.example.com", "hooks.example.com:8443"),
        ("hooks.example.com.", "", "hooks.example.com"),
        ("", "", ""),
    ],
)
def test_the_capture_host_setting(tmp_path, value, public_url, expected):
    env = {"HOOKSCOPE_CAPTURE_HOST": value, "HOOKSCOPE_PUBLIC_URL": public_url}
    assert config.from_environment(str(tmp_path), env)["HOOKSCOPE_CAPTURE_HOST"] == expected


@pytest.mark.parametrize(
    ("value", "public_url", "said"),
    [
        ("https://hooks.example.com", "", "without a scheme or path"),
        ("hooks.example.com/h", "", "without a scheme or path"),
        ("hooks example", "", "must be a host name"),
        ("app.example.com", "https://app.example.com", "is HOOKSCOPE_PUBLIC_URL's host"),
    ],
)
def test_a_bad_capture_host_stops_the_start_naming_the_setting(tmp_path, value, public_url, said):
    env = {"HOOKSCOPE_CAPTURE_HOST": value, "HOOKSCOPE_PUBLIC_URL": public_url}
    with pytest.raises(config.ConfigError, match="HOOKSCOPE_CAPTURE_HOST") as raised:
        config.from_environment(str(tmp_path), env)
    assert said in str(raised.value)
