"""An operator keeps bin creation to their team and looks after every bin from /admin."""

from __future__ import annotations

import re

import pytest
import requests
from harness import Gunicorn
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

CREATE = "browser-create-token-0123456789"
ADMIN = "browser-admin-token-0123456789"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    """A server whose bins only the holders of its create token may create."""
    env = {"HOOKSCOPE_CREATE_TOKEN": CREATE, "HOOKSCOPE_ADMIN_TOKEN": ADMIN}
    with Gunicorn(tmp_path_factory.mktemp("guarded"), env=env) as server:
        yield server


def create(server: Gunicorn, name: str, captures: int = 0, size: int = 0) -> dict:
    made = requests.post(
        server.url + "/api/v1/bins",
        json={"name": name},
        headers={"Authorization": f"Bearer {CREATE}"},
        timeout=5,
    )
    assert made.status_code == 201, made.text
    for _ in range(captures):
        assert requests.post(made.json()["capture_url"], data=b"c" * size, timeout=5).ok
    return made.json()


def test_the_home_page_asks_for_the_create_token_once(guarded, page, tmp_path):
    page.goto(guarded.url + "/")
    token = page.locator("#create-token")
    expect(token).to_be_visible()
    button = page.get_by_role("button", name="Create bin", exact=True)

    token.fill("not the token")
    button.click()
    expect(page.locator("#create-refusal")).to_contain_text("HOOKSCOPE_CREATE_TOKEN")
    assert CREATE not in page.url
    page.screenshot(path=str(tmp_path / "asked.png"))

    page.locator("#create-token").fill(CREATE)
    page.get_by_role("button", name="Create bin", exact=True).click()
    page.wait_for_url(re.compile(r"/bins/[a-z2-7]{26}$"))
    expect(page.locator("#capture-url")).to_be_visible()
    first = page.url

    # Asked once: this browser creates the next bin without the field.
    page.goto(guarded.url + "/")
    expect(page.locator("#create-token")).to_have_count(0)
    page.get_by_role("button", name="Create bin", exact=True).click()
    page.wait_for_url(re.compile(r"/bins/[a-z2-7]{26}$"))
    assert page.url != first


def test_without_a_create_token_the_home_page_asks_for_nothing(server, page):
    page.goto(server.url + "/")
    expect(page.get_by_role("button", name="Create bin", exact=True)).to_be_visible()
    expect(page.locator("#create-token")).to_have_count(0)


def test_the_admin_page_lists_the_biggest_first_and_deletes_after_asking(
    guarded, page, dialogs, tmp_path
):
    small = create(guarded, "small one", captures=1, size=10)
    big = create(guarded, "<img src=x onerror=alert(1)> big one", captures=3, size=20_000)

    page.goto(guarded.url + "/admin")
    page.locator("#admin-token").fill(ADMIN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#admin-bins")).to_be_visible()
    assert page.url == guarded.url + "/admin"  # the token went in a POST, never a URL

    ids = page.locator("#admin-bins tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.binId)"
    )
    assert ids.index(big["id"]) < ids.index(small["id"])
    row = page.locator(f"tr[data-bin-id='{big['id']}']")
    expect(row.locator(".admin-bin-name")).to_have_text("<img src=x onerror=alert(1)> big one")
    expect(row.locator(".admin-stored")).to_contain_text("KiB")
    page.screenshot(path=str(tmp_path / "admin.png"), full_page=True)
    page.emulate_media(color_scheme="dark")
    page.screenshot(path=str(tmp_path / "admin-dark.png"), full_page=True)

    # The page asks first; the test's browser says no (tests/browser/conftest.py), so it stays.
    small_row = page.locator(f"tr[data-bin-id='{small['id']}']")
    small_row.get_by_role("button", name="Delete").click()
    assert dialogs and "small one" in dialogs[-1]
    expect(small_row).to_have_count(1)

    page.evaluate("window.confirm = () => true")
    small_row.get_by_role("button", name="Delete").click()
    expect(page.locator(f"tr[data-bin-id='{small['id']}']")).to_have_count(0)
    gone = requests.get(
        f"{guarded.url}/api/v1/bins/{small['id']}",
        headers={"Authorization": f"Bearer {small['read_key']}"},
        timeout=5,
    )
    assert gone.status_code == 404
    assert "admin delete operator=admin-token bin=" + small["id"] in guarded.log_text()
