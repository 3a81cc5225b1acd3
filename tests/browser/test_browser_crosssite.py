"""Another site's page cannot change anything on Hookscope, nor wipe the user's cookie.

The attacker's page is served from another local origin: 127.0.0.2 is another site to Chromium
(cross-site: SameSite=Lax keeps the cookie off its POSTs), and another port of 127.0.0.1 is the
same site (same-site: a sibling such as hooks.example.com beside app.example.com; the cookie goes
along). Either page fires no-cors fetch() calls at the API and then auto-submits a form.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine, text

pytestmark = pytest.mark.browser

ATTACK = """<!doctype html>
<title>You won a prize</title>
<form id="forged" method="POST" action="{form_target}"></form>
<script>
(async () => {{
  for (const url of {fetch_targets}) {{
    try {{
      await fetch(url, {{ method: "POST", mode: "no-cors", credentials: "include" }});
    }} catch (err) {{
      // a refused fetch still proves nothing happened; the server's answers are checked
    }}
  }}
  document.getElementById("forged").submit();
}})();
</script>
"""


class AttackPage(BaseHTTPRequestHandler):
    """Serve the forger's page: ?form=<url>&fetch=<url>&fetch=<url>..."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        query = parse_qs(urlsplit(self.path).query)
        if "form" not in query:  # the favicon
            self.send_error(404)
            return
        page = ATTACK.format(
            form_target=query["form"][0],
            fetch_targets="[" + ", ".join(f'"{url}"' for url in query.get("fetch", [])) + "]",
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(params=["127.0.0.2", "127.0.0.1"], ids=["cross-site", "same-site"])
def attacker(request) -> Iterator[str]:
    """The forger's site: another address (cross-site) or another port (same-site)."""
    server = ThreadingHTTPServer((request.param, 0), AttackPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{request.param}:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def count_bins(server) -> int:
    url = server.env["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM bins")).scalar_one()
    finally:
        engine.dispose()


def hookscope_cookie(page) -> str:
    [cookie] = [c for c in page.context.cookies() if c["name"] == "hookscope"]
    return cookie["value"]


@pytest.mark.parametrize("form_path", ["/api/v1/bins", "/bins"])
def test_a_forged_page_creates_nothing_and_leaves_the_cookie(server, page, attacker, form_path):
    # The user created two bins on the home page: their keys are in the browser's cookie.
    mine = []
    for _ in range(2):
        page.goto(server.url)
        page.get_by_role("button", name="Create bin", exact=True).click()
        page.wait_for_url(f"{server.url}/bins/*")
        mine.append(page.url.rsplit("/", 1)[1])
    page.goto("about:blank")  # the bin page's own requests are done
    cookie, bins_before = hookscope_cookie(page), count_bins(server)
    answers: list[tuple[str, int]] = []
    page.on(
        "response",
        lambda r: answers.append((r.url, r.status)) if r.url.startswith(server.url) else None,
    )

    fetches = [f"{server.url}/api/v1/bins", f"{server.url}/api/v1/bins/{mine[0]}/session"]
    query = "&".join([f"form={server.url}{form_path}", *(f"fetch={url}" for url in fetches)])
    page.goto(f"{attacker}/?{query}")
    page.wait_for_url(f"{server.url}{form_path}")

    assert hookscope_cookie(page) == cookie, "the forged requests replaced the user's cookie"
    assert count_bins(server) == bins_before, "the forged requests created a bin"
    assert sorted(answers) == sorted((url, 403) for url in [*fetches, server.url + form_path])
    expect(page.locator("body")).to_contain_text("came from a page on another site")
    page.goto(server.url)
    for bin_id in mine:
        expect(page.locator(".your-bins")).to_contain_text(bin_id)
