"""Pages and API answers carry read keys, share links and captured data: no cache keeps them."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/bins/{id}",
        "/api/v1/bins",
        "/api/v1/bins/{id}",
        "/api/v1/bins/{id}/requests",
        "/api/v1/bins/{id}/requests/1",
        "/api/v1/bins/{id}/requests/1/raw",
        "/api/v1/bins/nosuchbin0000000000000000",
        "/bins/nosuchbin0000000000000000",
    ],
)
def test_pages_and_api_answers_are_not_stored(client, new_bin, path):
    assert client.post(f"/h/{new_bin['id']}", data=b"secret body").status_code == 200
    response = client.get(path.format(id=new_bin["id"]))
    assert response.headers["Cache-Control"] == "no-store"


def test_a_new_bins_key_is_not_stored(client):
    created = client.post("/api/v1/bins")
    assert "read_key" in created.json
    assert created.headers["Cache-Control"] == "no-store"


def test_static_files_keep_caching(client):
    with client.get("/static/js/bin.js") as response:
        assert response.status_code == 200
        assert "no-store" not in response.headers.get("Cache-Control", "")
        assert response.headers.get("ETag")


def test_health_checks_hold_nothing_of_anyones(client):
    for path in ("/healthz", "/readyz"):
        assert "no-store" not in client.get(path).headers.get("Cache-Control", ""), path
