"""Changes another site's page sends are refused (403) before they run or touch the cookie.

tests/browser/test_browser_crosssite.py runs the attack in Chromium; here are the rules, and the
app's answers to the headers a browser sends.
"""

from __future__ import annotations

import pytest
from flask_migrate import upgrade
from harness import csrf_token

from app import create_app
from app.web.crosssite import origin_of, refusal_reason

OWN = frozenset({"http://hookscope.test"})


@pytest.mark.parametrize(
    ("method", "fetch_site", "origin", "bearer", "refused"),
    [
        # Reads are never refused.
        ("GET", "cross-site", "https://evil.example", False, False),
        ("HEAD", "cross-site", None, False, False),
        ("OPTIONS", "cross-site", None, False, False),
        # The browser's own verdict decides when it gives one.
        ("POST", "same-origin", None, False, False),
        ("POST", "cross-site", None, False, True),
        ("POST", "same-site", None, False, True),
        ("DELETE", "CROSS-SITE", None, False, True),
        ("PATCH", "same-site", "http://hookscope.test", False, True),
        # "none" (typed, bookmarked) and older browsers: Origin decides.
        ("POST", "none", "https://evil.example", False, True),
        ("POST", None, "https://evil.example", False, True),
        ("POST", None, "http://hooks.hookscope.test", False, True),
        ("POST", None, "https://hookscope.test", False, True),  # another scheme: another origin
        ("POST", None, "null", False, True),  # sandboxed frames, data: URLs
        ("POST", None, "http://hookscope.test", False, False),
        ("POST", None, "HTTP://Hookscope.test:80", False, False),
        ("POST", "none", "http://hookscope.test", False, False),
        # Neither header: curl, scripts, the CLI.
        ("POST", None, None, False, False),
        ("DELETE", None, None, False, False),
        # A Bearer key is the credential; a page cannot send one across sites.
        ("POST", "cross-site", "https://evil.example", True, False),
        ("DELETE", None, "null", True, False),
    ],
)
def test_which_requests_are_refused(method, fetch_site, origin, bearer, refused):
    reason = refusal_reason(method, fetch_site, origin, OWN, bearer)
    assert (reason is not None) == refused, reason


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
        ("https://Hooks.Example.com:443/x", "https://hooks.example.com"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        ("https://example.com:8443", "https://example.com:8443"),
        ("null", None),
        ("ftp://example.com", None),
        ("http://example.com:99999", None),
    ],
)
def test_origins_are_written_as_browsers_write_them(url, origin):
    assert origin_of(url) == origin


@pytest.fixture
def owner(browser):
    """A browser holding the key of one bin with one capture."""
    client = browser()
    made = client.post("/api/v1/bins").json
    assert client.post(f"/h/{made['id']}", data=b"x").status_code == 200
    return client, made


CROSS_SITE = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}


def test_a_cross_site_api_change_is_refused_with_json_and_leaves_the_cookie(app, owner):
    client, made = owner
    base = f"/api/v1/bins/{made['id']}"
    for method, url in [
        ("POST", "/api/v1/bins"),
        ("PATCH", base),
        ("DELETE", f"{base}/requests/1"),
        ("DELETE", f"{base}/requests"),
        ("DELETE", base),
        ("POST", f"{base}/session"),
    ]:
        response = client.open(url, method=method, json={"name": "x"}, headers=CROSS_SITE)
        assert response.status_code == 403, (method, url)
        assert response.json["error"] == "cross_site_request"
        assert "another site" in response.json["message"]
        assert "Set-Cookie" not in response.headers, (method, url)
    assert client.get(f"{base}/requests/1").status_code == 200  # nothing changed
    assert [b["id"] for b in client.get("/api/v1/bins").json["bins"]] == [made["id"]]


def test_a_cross_site_form_gets_a_plain_refusal_before_the_csrf_check(app):
    # No cookie (SameSite=Lax keeps it off), so no CSRF token either: the refusal says why.
    response = app.test_client().post("/bins", headers=CROSS_SITE)
    assert response.status_code == 403
    assert response.mimetype == "text/plain"
    assert "another site" in response.text
    assert "Set-Cookie" not in response.headers


def test_a_sibling_site_is_refused_too(app):
    # A page on hooks.example.com beside app.example.com: same-site, but not the app.
    response = app.test_client().post(
        "/api/v1/bins",
        headers={"Sec-Fetch-Site": "same-site", "Origin": "http://hooks.localhost"},
    )
    assert response.status_code == 403
    assert "same-site" in response.json["message"]


def test_an_old_browser_is_judged_by_origin(app):
    client = app.test_client()
    foreign = client.post("/api/v1/bins", headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403
    assert "'https://evil.example'" in foreign.json["message"]
    assert "HOOKSCOPE_PUBLIC_URL" in foreign.json["message"]
    # The test client's requests come in on http://localhost.
    own = client.post("/api/v1/bins", headers={"Origin": "http://localhost"})
    assert own.status_code == 201


def test_the_public_url_is_the_apps_own_origin(tmp_path):
    app = create_app(
        {
            "SECRET_KEY": "test",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.db'}",
            "RATELIMIT_ENABLED": False,
            "HOOKSCOPE_PUBLIC_URL": "https://hooks.example.com",
        }
    )
    with app.app_context():
        upgrade()
    client = app.test_client()
    # Behind a tunnel whose Host the app does not see: the public URL is still its own.
    tunnel = client.post("/api/v1/bins", headers={"Origin": "https://hooks.example.com"})
    assert tunnel.status_code == 201
    assert client.post("/api/v1/bins", headers={"Origin": "https://evil.com"}).status_code == 403


def test_same_origin_pages_and_scripts_keep_working(app, owner):
    client, made = owner
    base = f"/api/v1/bins/{made['id']}"
    same = {"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"}
    assert client.patch(base, json={"name": "mine"}, headers=same).status_code == 200
    token = csrf_token(client)
    assert client.post("/bins", headers=same, data={"csrf_token": token}).status_code == 303
    # A script with the key, whatever headers it sends.
    script = app.test_client()
    bearer = {"Authorization": f"Bearer {made['read_key']}", **CROSS_SITE}
    assert script.patch(base, json={"name": "ci"}, headers=bearer).status_code == 200
    assert script.post("/api/v1/bins").status_code == 201  # curl: no Origin, no Sec-Fetch-Site


def test_csp_reports_are_not_changes(app):
    # Browsers send them on their own, from whatever document broke the policy.
    report = '{"csp-report": {"violated-directive": "script-src"}}'
    response = app.test_client().post(
        "/csp-report",
        data=report,
        content_type="application/csp-report",
        headers={"Origin": "null"},
    )
    assert response.status_code == 204
