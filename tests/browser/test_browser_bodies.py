"""Each kind of body is shown the way a developer needs to read it, and big ones stay bounded."""

from __future__ import annotations

import gzip
import json
import time

import pytest
from browsing import open_request, send, send_raw
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_invalid_json_is_shown_as_sent_with_the_parser_message(page, bin_, open_bin):
    sent = '{"amount": 10, "currency": "usd",}'
    seq = send(bin_, data=sent, headers={"Content-Type": "application/json"})
    open_bin(bin_)

    detail = open_request(page, seq)
    expect(detail.locator(".note")).to_contain_text("Invalid JSON: ")
    expect(detail.locator(".body-text")).to_have_text(sent)


def test_binary_body_is_shown_as_a_hex_dump(page, bin_, open_bin):
    seq = send(
        bin_, data=bytes(range(256)) * 2, headers={"Content-Type": "application/octet-stream"}
    )
    open_bin(bin_)

    hexdump = open_request(page, seq).locator(".body-hex")
    lines = hexdump.text_content().split("\n")
    assert len(lines) == 32
    assert lines[0] == (
        "00000000  00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f  |................|"
    )
    assert lines[4] == (
        "00000040  40 41 42 43 44 45 46 47  48 49 4a 4b 4c 4d 4e 4f  |@ABCDEFGHIJKLMNO|"
    )
    assert lines[31].startswith("000001f0  f0 f1")


def test_form_body_is_a_table_of_fields_in_order(page, bin_, open_bin):
    seq = send(bin_, data=[("plan", "pro"), ("tag", "a"), ("tag", "b c")])
    open_bin(bin_)

    rows = open_request(page, seq).locator(".body-view table tbody tr")
    assert [r.locator("th, td").all_text_contents() for r in rows.all()] == [
        ["plan", "pro"],
        ["tag", "a"],
        ["tag", "b c"],
    ]


def test_multipart_body_lists_fields_and_files(page, bin_, open_bin):
    seq = send(
        bin_,
        "/upload",
        data={"user": "ada"},
        files={"avatar": ("me.png", b"\x89PNG\r\n" + bytes(300), "image/png")},
    )
    open_bin(bin_)

    view = open_request(page, seq).locator(".body-view")
    fields = view.locator("table").first.locator("tbody tr th, tbody tr td")
    assert fields.all_text_contents() == ["user", "ada"]
    files = view.locator("table.files tbody tr td")
    assert files.all_text_contents() == ["avatar", "me.png", "image/png", "306 B"]


def test_text_and_empty_bodies(page, bin_, open_bin):
    text = send(bin_, data="line one\nline two\n", headers={"Content-Type": "text/plain"})
    empty = send(bin_, method="GET")
    open_bin(bin_)

    expect(open_request(page, text).locator(".body-text")).to_have_text("line one\nline two\n")
    expect(open_request(page, empty).locator(".body-view")).to_have_text("(no body)")


def test_gzip_body_is_noted_and_shown_decompressed(page, bin_, open_bin):
    body = gzip.compress(b'{"compressed":true,"n":1.0}')
    seq = send(
        bin_, data=body, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    open_bin(bin_)

    detail = open_request(page, seq)
    expect(detail.locator(".note")).to_contain_text(f"gzip-encoded, {len(body)} bytes")
    expect(detail.locator(".body-json")).to_have_text('{\n  "compressed": true,\n  "n": 1.0\n}')
    detail.get_by_role("tab", name="Raw").click()
    expect(detail.locator(".body-hex")).to_contain_text("1f 8b")  # the gzip magic, as received


def big_json(size: int) -> bytes:
    items, total = [], 0
    while total < size:
        item = json.dumps({"id": len(items), "name": f"item {len(items)}", "tags": ["a", "b"]})
        items.append(item)
        total += len(item) + 1
    return ("[" + ",".join(items) + "]").encode()


@pytest.mark.parametrize(
    "content_type, body, shown, view",
    [
        ("application/json", big_json(2 * 1024 * 1024), "256 KiB", ".body-json"),
        ("text/plain", b"0123456789abcde\n" * (5 * 1024 * 1024 // 16), "256 KiB", ".body-text"),
        (
            "application/octet-stream",
            bytes(range(256)) * (5 * 1024 * 1024 // 256),
            "64.0 KiB",
            ".body-hex",
        ),
    ],
    ids=["json-2MiB", "text-5MiB", "binary-5MiB"],
)
def test_large_bodies_render_a_bounded_part_and_say_so(
    page, bin_, open_bin, content_type, body, shown, view
):
    seq = send(bin_, data=body, headers={"Content-Type": content_type})
    open_bin(bin_)

    started = time.monotonic()
    detail = open_request(page, seq)
    expect(detail.locator(".note")).to_contain_text(
        f"Showing first {shown} of {len(body) / 1024 / 1024:.1f} MiB ({len(body):,} bytes)"
        " - download raw for all"
    )
    assert time.monotonic() - started < 5, "opening a large body took too long"
    assert page.evaluate(f"document.querySelector('{view}').textContent.length") < 1_500_000
    expect(detail.get_by_role("link", name="Download raw")).to_have_attribute(
        "href", f"/api/v1/bins/{bin_['id']}/requests/{seq}/raw"
    )


def test_long_paths_headers_and_values_do_not_widen_the_page(page, bin_, open_bin):
    long_path = "/" + "segment" * 500
    long_value = "v" * 10_000
    seq = send_raw(
        bin_,
        f"{long_path}?token={'t' * 2000}",
        headers={"X-Long": long_value, "Content-Type": "application/json"},
        body=json.dumps({"blob": "x" * 50_000}).encode(),
    )
    open_bin(bin_)

    open_request(page, seq)
    sizes = page.evaluate(
        """() => {
            const widths = (el) => [el.scrollWidth, el.clientWidth];
            return {
                page: document.documentElement.scrollWidth,
                detail: widths(document.getElementById('detail')),
                list: widths(document.getElementById('list-scroll')),
            };
        }"""
    )
    assert sizes["page"] <= 1280
    assert sizes["detail"][0] <= sizes["detail"][1]
    assert sizes["list"][0] <= sizes["list"][1]
