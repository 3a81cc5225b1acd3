"""The JSON API: bins, keyset pages of summaries, request detail and raw bodies."""

from __future__ import annotations

import gzip
import io
import re

import pytest


def post(client, bin_id: str, path: str = "", **kwargs):
    response = client.post(f"/h/{bin_id}{path}", **kwargs)
    assert response.status_code == 200
    return int(response.headers["X-Hookscope-Seq"])


def test_create_bin_answers_201_with_its_links(client):
    response = client.post("/api/v1/bins", json={"name": "stripe staging"})
    assert response.status_code == 201
    body = response.json
    assert re.fullmatch(r"[a-z2-7]{26}", body["id"])
    assert body["name"] == "stripe staging"
    assert body["capture_url"] == f"http://localhost/h/{body['id']}"
    assert body["url"] == f"http://localhost/bins/{body['id']}"
    assert response.headers["Location"] == f"/api/v1/bins/{body['id']}"
    assert len(body["read_key"]) >= 32
    assert body["share_url"] == f"http://localhost/bins/{body['id']}#key={body['read_key']}"
    shown = client.get(f"/api/v1/bins/{body['id']}").json
    assert shown == {k: v for k, v in body.items() if k not in ("read_key", "share_url")}


def test_bin_ids_are_unique_and_random(client):
    ids = {client.post("/api/v1/bins").json["id"] for _ in range(20)}
    assert len(ids) == 20


def test_public_url_setting_shapes_the_capture_url(app, client):
    app.config["HOOKSCOPE_PUBLIC_URL"] = "https://hooks.example.com"
    body = client.post("/api/v1/bins").json
    assert body["capture_url"] == f"https://hooks.example.com/h/{body['id']}"


@pytest.mark.parametrize("name", [5, "x" * 201])
def test_bad_bin_name_is_refused(client, name):
    response = client.post("/api/v1/bins", json={"name": name})
    assert response.status_code == 400
    assert response.json["error"] == "bad_name"


def test_pages_are_newest_first_with_a_keyset_cursor(client, new_bin):
    for i in range(7):
        post(client, new_bin["id"], data=str(i))
    url = f"/api/v1/bins/{new_bin['id']}/requests"
    first = client.get(url + "?limit=3").json
    assert [r["seq"] for r in first["requests"]] == [7, 6, 5]
    second = client.get(f"{url}?limit=3&before={first['next_before']}").json
    assert [r["seq"] for r in second["requests"]] == [4, 3, 2]
    last = client.get(f"{url}?limit=3&before={second['next_before']}").json
    assert [r["seq"] for r in last["requests"]] == [1]
    assert last["next_before"] is None


def test_summaries_never_carry_headers_or_bodies(client, new_bin):
    post(client, new_bin["id"], data=b"secret body", headers={"X-Token": "t"})
    [summary] = client.get(f"/api/v1/bins/{new_bin['id']}/requests").json["requests"]
    assert set(summary) == {
        "bin",
        "seq",
        "method",
        "path",
        "query_string",
        "content_type",
        "body_size",
        "remote_addr",
        "received_at",
        "status",
        "rejected",
        "pinned",
        "delivery_id",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", summary["received_at"])


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("limit=abc", "bad_parameter"),
        ("before=-1", "bad_parameter"),
        ("limit=201", "bad_parameter"),
    ],
)
def test_bad_page_parameters_are_explained(client, new_bin, query, error):
    response = client.get(f"/api/v1/bins/{new_bin['id']}/requests?{query}")
    assert response.status_code == 400
    assert response.json["error"] == error and response.json["message"]


def test_detail_gives_headers_in_order_and_the_parsed_query(client, new_bin):
    seq = post(
        client,
        new_bin["id"],
        "/events?a=1&a=2&b=",
        data=b'{"id": 12345678901234567890}',
        headers=[("X-First", "1"), ("X-Second", "2")],
        content_type="application/json",
    )
    detail = client.get(f"/api/v1/bins/{new_bin['id']}/requests/{seq}").json
    names = [name for name, _ in detail["headers"]]
    assert names.index("X-First") < names.index("X-Second")
    assert detail["query"] == [["a", "1"], ["a", "2"], ["b", ""]]
    assert detail["query_string"] == "a=1&a=2&b="
    assert detail["path"] == "/events"
    assert detail["url"].endswith(f"/h/{new_bin['id']}/events?a=1&a=2&b=")
    assert detail["body"]["kind"] == "json"
    assert detail["body"]["size"] == 28
    assert detail["raw_url"] == f"/api/v1/bins/{new_bin['id']}/requests/{seq}/raw"


def test_detail_parses_forms_and_lists_files(client, new_bin):
    form_seq = post(client, new_bin["id"], data={"a": "1", "b": "two words"})
    multipart_seq = post(
        client,
        new_bin["id"],
        data={"field": "v", "upload": (io.BytesIO(b"\x00\x01\x02"), "f.bin")},
        content_type="multipart/form-data",
    )
    url = f"/api/v1/bins/{new_bin['id']}/requests"
    form = client.get(f"{url}/{form_seq}").json
    assert form["body"]["kind"] == "form"
    assert form["form"] == [["a", "1"], ["b", "two words"]]
    multipart = client.get(f"{url}/{multipart_seq}").json
    assert multipart["body"]["kind"] == "multipart"
    assert multipart["form"] == [["field", "v"]]
    assert multipart["files"] == [
        {
            "field": "upload",
            "filename": "f.bin",
            "content_type": "application/octet-stream",
            "size": 3,
        }
    ]


def test_raw_returns_exact_bytes_as_an_inert_download(client, new_bin):
    body = gzip.compress(b'{"a": 1}') + bytes(range(256))
    seq = post(client, new_bin["id"], data=body, headers={"Content-Encoding": "gzip"})
    response = client.get(f"/api/v1/bins/{new_bin['id']}/requests/{seq}/raw")
    assert response.data == body
    assert response.mimetype == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["Content-Security-Policy"] == "sandbox"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    detail = client.get(f"/api/v1/bins/{new_bin['id']}/requests/{seq}").json
    assert detail["body"]["content_encoding"] == "gzip"
    assert detail["body"]["kind"] == "binary"


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("/api/v1/bins/nosuchbin", "bin_not_found"),
        ("/api/v1/bins/nosuchbin/requests", "bin_not_found"),
        ("/api/v1/bins/{bin}/requests/99", "request_not_found"),
        ("/api/v1/bins/{bin}/requests/99/raw", "request_not_found"),
        ("/api/v1/nothing-here", "not_found"),
    ],
)
def test_errors_are_json_with_a_code_and_message(client, new_bin, url, error):
    response = client.get(url.format(bin=new_bin["id"]))
    assert response.status_code == 404
    assert response.json["error"] == error
    assert response.json["message"]


def test_pages_send_a_strict_content_security_policy(client, new_bin):
    for url in ("/", f"/bins/{new_bin['id']}", f"/api/v1/bins/{new_bin['id']}"):
        response = client.get(url)
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"


def test_the_home_page_creates_a_bin_and_lands_on_it(client):
    response = client.post("/bins")
    assert response.status_code == 303
    bin_id = response.headers["Location"].rsplit("/", 1)[1]
    page = client.get(f"/bins/{bin_id}")
    assert page.status_code == 200
    assert f"/h/{bin_id}" in page.text


def test_an_unknown_bin_page_is_404(client):
    assert client.get("/bins/nosuchbin").status_code == 404
