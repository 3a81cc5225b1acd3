"""The session cookie holds the browser's read keys: no response may put back an older one.

A browser takes whichever Set-Cookie arrives last. Responses to requests that left with the old
cookie (the page's static files, its API calls) and come back after a key was remembered must
not rewrite the cookie, so only a change writes it.
"""

from __future__ import annotations

import http.client
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

import requests
from harness import Gunicorn

from app import config

COOKIE = "hookscope"


class Jar:
    """A browser's cookie for one site: every Set-Cookie replaces it, in the order they arrive."""

    def __init__(self) -> None:
        self.value: str | None = None

    def take(self, set_cookies: list[str]) -> None:
        for line in set_cookies:
            parsed = SimpleCookie()
            parsed.load(line)
            if COOKIE in parsed:
                self.value = parsed[COOKIE].value

    def header(self) -> dict[str, str]:
        return {"Cookie": f"{COOKIE}={self.value}"} if self.value else {}


def send(server, method: str, path: str, headers: dict[str, str]) -> http.client.HTTPConnection:
    """Send a request on a connection of its own and leave its answer unread, as in flight."""
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request(method, path, headers=headers)
    return conn


def answer(conn: http.client.HTTPConnection) -> tuple[int, list[str]]:
    """Read an answer: its status and Set-Cookie headers."""
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status, response.headers.get_all("Set-Cookie") or []


def test_responses_in_flight_while_a_share_link_adds_a_key_keep_the_key(server):
    jar = Jar()
    # The browser opened the home page (CSRF token) and created a bin there.
    home = requests.get(server.url + "/", timeout=10)
    jar.take(home.raw.headers.getlist("Set-Cookie"))
    token = home.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    created = requests.post(
        server.url + "/api/v1/bins", headers={**jar.header(), "X-CSRFToken": token}, timeout=10
    )
    jar.take(created.raw.headers.getlist("Set-Cookie"))
    mine = created.json()["id"]
    shared = server.create_bin()  # someone else's bin, whose share link the user opens

    # The page's static files and API calls leave with the cookie as it is now...
    in_flight_paths = [
        "/static/favicon.svg",
        "/static/css/app.css",
        "/static/js/bin.js",
        "/static/js/unlock.js",
        "/static/vendor/socket.io/socket.io.min.js",
        "/",
        f"/bins/{mine}",
        f"/bins/{shared['id']}",  # the locked page the share link lands on
        "/api/v1/bins",
        f"/api/v1/bins/{mine}",
        f"/api/v1/bins/{mine}/requests",
        "/healthz",
    ] * 5
    in_flight = [send(server, "GET", path, jar.header()) for path in in_flight_paths]
    # ...while the share link's script trades its key for the cookie...
    session_url = f"/api/v1/bins/{shared['id']}/session"
    opened = send(
        server,
        "POST",
        session_url,
        {**jar.header(), "Authorization": f"Bearer {shared['read_key']}", "X-CSRFToken": token},
    )
    status, set_cookies = answer(opened)
    assert status == 204
    jar.take(set_cookies)
    # ...and their answers come back after it.
    rewrote = []
    for path, conn in zip(in_flight_paths, in_flight, strict=True):
        status, set_cookies = answer(conn)
        assert status < 500, path  # the locked page is a 404
        jar.take(set_cookies)
        rewrote += [path] if set_cookies else []

    held = requests.get(server.url + "/api/v1/bins", headers=jar.header(), timeout=10).json()
    assert {b["id"] for b in held["bins"]} == {mine, shared["id"]}, "the shared bin's key is lost"
    assert rewrote == [], "these rewrote the cookie they left with"


def test_only_a_change_writes_the_cookie(server):
    jar = Jar()
    created = requests.post(server.url + "/api/v1/bins", timeout=10)
    assert "Expires=" in created.headers["Set-Cookie"]  # a key remembered: a change
    jar.take([created.headers["Set-Cookie"]])
    page = f"{server.url}/bins/{created.json()['id']}"
    first = requests.get(page, headers=jar.header(), timeout=10)
    assert "Set-Cookie" in first.headers  # the page's CSRF token joins the session: a change
    jar.take([first.headers["Set-Cookie"]])
    for path in (page, server.url + "/", server.url + "/static/js/bin.js"):
        again = requests.get(path, headers=jar.header(), timeout=10)
        assert again.status_code == 200
        assert "Set-Cookie" not in again.headers, path


def test_an_https_public_url_that_trusts_no_proxy_warns_at_start(tmp_path):
    found = config.warnings(
        {"HOOKSCOPE_PUBLIC_URL": "https://h.example", "HOOKSCOPE_PROXY_COUNT": 0}
    )
    assert len(found) == 1 and "HOOKSCOPE_PROXY_COUNT" in found[0] and "Secure" in found[0]
    assert not config.warnings(
        {"HOOKSCOPE_PUBLIC_URL": "https://h.example", "HOOKSCOPE_PROXY_COUNT": 1}
    )
    assert not config.warnings({"HOOKSCOPE_PUBLIC_URL": "", "HOOKSCOPE_PROXY_COUNT": 0})

    env = {"HOOKSCOPE_PUBLIC_URL": "https://hooks.example.com"}
    with Gunicorn(tmp_path, env=env) as server:
        # Over the TLS proxy it trusts no one to speak for, the cookie goes out without Secure.
        created = requests.post(
            server.url + "/api/v1/bins", headers={"X-Forwarded-Proto": "https"}, timeout=10
        )
        assert "Secure" not in created.headers["Set-Cookie"]
    warned = [line for line in server.log_text().splitlines() if "HOOKSCOPE_PROXY_COUNT" in line]
    assert len(warned) == 1 and "[WARNING]" in warned[0], warned

    with Gunicorn(tmp_path, env={**env, "HOOKSCOPE_PROXY_COUNT": "1"}) as trusted:
        created = requests.post(
            trusted.url + "/api/v1/bins", headers={"X-Forwarded-Proto": "https"}, timeout=10
        )
        assert "Secure" in created.headers["Set-Cookie"]
    assert "HOOKSCOPE_PROXY_COUNT=0" not in trusted.log_text()
