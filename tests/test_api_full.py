"""GET /api/v1/bins/<id>/requests/full: captures after a seq, oldest first, with their headers
and exact bodies, bounded by count and bytes."""

from __future__ import annotations

import base64

from app.web.api import full


def post(client, bin_id: str, path: str = "", **kwargs) -> int:
    response = client.post(f"/h/{bin_id}{path}", **kwargs)
    assert response.status_code == 200
    return int(response.headers["X-Hookscope-Seq"])


def test_captures_come_oldest_first_after_a_seq_with_headers_and_exact_bodies(client, new_bin):
    bin_id = new_bin["id"]
    bodies = [b"\x00\xff binary \r\n", b'{"a": 1}', b""]
    for n, body in enumerate(bodies):
        post(client, bin_id, f"/p{n}?q={n}", data=body, headers={"X-N": str(n)})

    page = client.get(f"/api/v1/bins/{bin_id}/requests/full?after=1").json

    assert [r["seq"] for r in page["requests"]] == [2, 3]
    assert (page["more"], page["last_seq"]) == (False, 3)
    second = page["requests"][0]
    detail = client.get(f"/api/v1/bins/{bin_id}/requests/2").json
    assert {k: second[k] for k in detail if k in second} == {
        k: detail[k] for k in detail if k in second
    }
    assert second["headers"] == detail["headers"]
    assert ["X-N", "1"] in second["headers"]
    assert (second["path"], second["query_string"]) == ("/p1", "q=1")
    assert base64.b64decode(page["requests"][0]["body_base64"]) == bodies[1]
    assert page["requests"][1]["body_base64"] == ""
    everything = client.get(f"/api/v1/bins/{bin_id}/requests/full").json["requests"]
    assert base64.b64decode(everything[0]["body_base64"]) == bodies[0]


def test_a_page_stops_at_its_limit_and_says_more(client, new_bin):
    for _ in range(5):
        post(client, new_bin["id"], data=b"x")
    url = f"/api/v1/bins/{new_bin['id']}/requests/full"

    first = client.get(f"{url}?limit=2").json
    rest = client.get(f"{url}?after=4&limit=2").json

    assert ([r["seq"] for r in first["requests"]], first["more"]) == ([1, 2], True)
    assert ([r["seq"] for r in rest["requests"]], rest["more"]) == ([5], False)
    assert client.get(f"{url}?after=5").json == {"requests": [], "more": False, "last_seq": 5}


def test_a_page_carries_a_bounded_number_of_body_bytes_but_always_one_capture(
    client, new_bin, monkeypatch
):
    monkeypatch.setattr(full, "FULL_MAX_BYTES", 10)
    for size in (30, 4, 4, 4):
        post(client, new_bin["id"], data=b"y" * size)
    url = f"/api/v1/bins/{new_bin['id']}/requests/full"

    alone = client.get(url).json
    after = client.get(f"{url}?after=1").json

    assert ([r["seq"] for r in alone["requests"]], alone["more"]) == ([1], True)
    assert ([r["seq"] for r in after["requests"]], after["more"]) == ([2, 3], True)


def test_deleted_captures_are_skipped(client, new_bin):
    for _ in range(3):
        post(client, new_bin["id"])
    assert client.delete(f"/api/v1/bins/{new_bin['id']}/requests/2").status_code == 204

    page = client.get(f"/api/v1/bins/{new_bin['id']}/requests/full").json

    assert [r["seq"] for r in page["requests"]] == [1, 3]


def test_a_wrong_key_or_a_bad_parameter_is_refused(app, new_bin):
    url = f"/api/v1/bins/{new_bin['id']}/requests/full"
    stranger = app.test_client()
    refused = stranger.get(url, headers={"Authorization": "Bearer not-the-key"})
    assert (refused.status_code, refused.json["error"]) == (404, "bin_not_found")
    owner = {"Authorization": f"Bearer {new_bin['read_key']}"}
    for query in ("after=-1", "limit=0", f"limit={full.FULL_LIMIT_MAX + 1}", "after=x"):
        bad = stranger.get(f"{url}?{query}", headers=owner)
        assert (bad.status_code, bad.json["error"]) == (400, "bad_parameter"), query
