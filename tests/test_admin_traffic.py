"""The admin view's traffic: captures and refusals per bin, and the listing sorted by them.

Under gunicorn, over real HTTP: the workers count what they take and refuse and add the counts
every 2 s (app/ingest/tally.py), so the test reads the listing until the counts arrive.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import jsonschema_rs
import pytest
import requests
from harness import Gunicorn, database_url_for, drop_postgres_database

ADMIN = "admin-token-0123456789abc"
OPERATOR = {"Authorization": f"Bearer {ADMIN}"}
HOOKSCOPE = str(Path(sys.executable).parent / "hookscope")
BURST = 5  # captures each bin takes at once (then one an hour): past it, 429
MAX_BODY = 1024


@pytest.fixture(scope="module")
def traffic(tmp_path_factory):
    """A server where three bins took and refused known traffic and two took none.

    busy: 2 bodies too large (413), 3 captures, then 4 past the per-bin limit (429): 9 in all.
    quiet: 1 capture, 1 body too large: 2. heavy: 1 capture of the most bytes: 1. Two idle: 0.
    """
    workdir = tmp_path_factory.mktemp("admin-traffic")
    database = database_url_for(workdir)
    env = {
        "DATABASE_URL": database,
        "HOOKSCOPE_ADMIN_TOKEN": ADMIN,
        "HOOKSCOPE_RATE_LIMITS": "true",
        "HOOKSCOPE_RATE_LIMIT_PER_BIN": f"1/hour burst {BURST}",
        "HOOKSCOPE_RATE_LIMIT_PER_ADDRESS": "off",
        "HOOKSCOPE_MAX_BODY_BYTES": str(MAX_BODY),
    }
    with Gunicorn(workdir, env=env) as server:
        made = {name: server.create_bin() for name in ("busy", "quiet", "heavy", "idle", "idle2")}
        url = {name: created["capture_url"] for name, created in made.items()}
        too_big = b"x" * (MAX_BODY + 1)
        sent = [requests.post(url["busy"], data=too_big, timeout=10) for _ in range(2)]
        sent += [requests.post(url["busy"], data=b"ok", timeout=10) for _ in range(3)]
        sent += [requests.post(url["busy"], data=b"ok", timeout=10) for _ in range(4)]
        sent += [requests.post(url["quiet"], data=b"ok", timeout=10)]
        sent += [requests.post(url["quiet"], data=too_big, timeout=10)]
        sent += [requests.post(url["heavy"], data=b"h" * MAX_BODY, timeout=10)]
        assert [r.status_code for r in sent] == [413] * 2 + [200] * 3 + [429] * 4 + [200, 413, 200]
        wait_for_counts(server, expected_total=len(sent))
        ids = {name: created["id"] for name, created in made.items()}
        yield server, ids, database
    if database.startswith("postgresql"):
        drop_postgres_database(database)


def listing(server: Gunicorn, **query: object) -> requests.Response:
    return requests.get(
        f"{server.url}/api/v1/admin/bins", params=query, headers=OPERATOR, timeout=10
    )


def wait_for_counts(server: Gunicorn, expected_total: int) -> None:
    """Read the listing until the workers have added every count (every 2 s)."""
    deadline = time.monotonic() + 30
    while True:
        rows = listing(server, limit=500).json()["bins"]
        total = sum(r["traffic"]["captures_day"] + r["traffic"]["refusals_day"] for r in rows)
        if total >= expected_total:
            return
        assert time.monotonic() < deadline, rows
        time.sleep(0.2)


def test_each_bin_shows_the_captures_and_refusals_it_had(traffic):
    server, ids, _ = traffic
    answer = listing(server, limit=500)
    assert answer.status_code == 200
    rows = {row["id"]: row for row in answer.json()["bins"]}
    assert rows[ids["busy"]]["traffic"] == {
        "captures_hour": 3,
        "captures_day": 3,
        "refusals_hour": 6,
        "refusals_day": 6,
        "refusals_by_reason": {
            "body_too_large": {"hour": 2, "day": 2},
            "rate_limit_bin": {"hour": 4, "day": 4},
        },
    }
    assert rows[ids["quiet"]]["traffic"] == {
        "captures_hour": 1,
        "captures_day": 1,
        "refusals_hour": 1,
        "refusals_day": 1,
        "refusals_by_reason": {"body_too_large": {"hour": 1, "day": 1}},
    }
    assert rows[ids["heavy"]]["traffic"]["captures_day"] == 1
    assert rows[ids["heavy"]]["traffic"]["refusals_day"] == 0
    idle = {"captures_hour": 0, "captures_day": 0, "refusals_hour": 0, "refusals_day": 0}
    assert rows[ids["idle"]]["traffic"] == idle | {"refusals_by_reason": {}}
    # Sorted by bytes, the bin holding the most comes first whatever its traffic.
    assert answer.json()["bins"][0]["id"] == ids["heavy"]
    # As the served description says (AdminTraffic: no field more, none missing).
    document = requests.get(f"{server.url}/api/v1/openapi.json", timeout=10).json()
    schema = {"$ref": "#/components/schemas/AdminBinList", "components": document["components"]}
    jsonschema_rs.validator_for(schema).validate(answer.json())


def test_sort_by_traffic_puts_the_busiest_first_and_pages_by_cursor(traffic):
    server, ids, _ = traffic
    idle_last = sorted([ids["idle"], ids["idle2"]], reverse=True)  # no traffic: by id
    expected = [ids["busy"], ids["quiet"], ids["heavy"], *idle_last]
    first = listing(server, sort="traffic", limit=2).json()
    assert [row["id"] for row in first["bins"]] == expected[:2]
    # The cursor is the last row's captures plus refusals in the last day, then its id.
    assert first["next"] == f"2.{ids['quiet']}"
    second = listing(server, sort="traffic", limit=2, after=first["next"]).json()
    assert [row["id"] for row in second["bins"]] == expected[2:4]
    assert second["next"] == f"0.{expected[3]}"
    third = listing(server, sort="traffic", limit=2, after=second["next"]).json()
    assert [row["id"] for row in third["bins"]] == expected[4:]
    assert third["next"] is None


@pytest.mark.parametrize("after", ["9", "x.y", "-1.abc", "9" * 20 + ".abc"])
def test_a_cursor_the_listing_did_not_give_is_a_400(traffic, after):
    server, _, _ = traffic
    refused = listing(server, sort="traffic", after=after)
    assert refused.status_code == 400
    assert refused.json()["error"] == "bad_parameter"
    assert (
        listing(server, sort="visits")
        .json()["message"]
        .startswith("sort must be one of: bytes, traffic")
    )


def test_the_admin_page_shows_traffic_and_keeps_the_sort_across_pages(traffic):
    server, ids, _ = traffic
    browser = requests.Session()
    page = browser.get(f"{server.url}/admin", timeout=10).text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    signed_in = browser.post(
        f"{server.url}/admin/session",
        data={"csrf_token": token, "admin_token": ADMIN},
        timeout=10,
    )
    assert signed_in.status_code == 200 and 'id="admin-bins"' in signed_in.text
    shown = browser.get(f"{server.url}/admin", params={"sort": "traffic", "limit": 2}, timeout=10)
    assert shown.status_code == 200
    html = shown.text
    assert re.findall(r'data-bin-id="([^"]+)"', html) == [ids["busy"], ids["quiet"]]
    busy = html.split(f'data-bin-id="{ids["busy"]}"', 1)[1].split("</tr>", 1)[0]
    cells = dict(re.findall(r'<td class="num admin-(\w+-\w+)[^"]*"[^>]*>([^<]*)</td>', busy))
    assert cells == {
        "captures-hour": "3",
        "captures-day": "3",
        "refusals-hour": "6",
        "refusals-day": "6",
    }
    # The most common reason first, with the setting that changes it.
    assert (
        'title="Last day: 4 rate_limit_bin (HOOKSCOPE_RATE_LIMIT_PER_BIN), '
        '2 body_too_large (HOOKSCOPE_MAX_BODY_BYTES)"' in busy
    )
    assert 'aria-current="page">Traffic' in html
    following = re.search(r'id="admin-next" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert "sort=traffic" in following
    rest = browser.get(server.url + following, timeout=10).text
    assert re.findall(r'data-bin-id="([^"]+)"', rest)[0] == ids["heavy"]


def test_hookscope_admin_usage_prints_traffic_sorted_by_it(traffic, tmp_path):
    server, ids, _ = traffic
    printed = subprocess.run(
        [HOOKSCOPE, "admin", "usage", "--sort", "traffic", "--limit", "2"],
        env=server.env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.splitlines()
    heading = printed[1]
    assert heading.split()[:3] == ["id", "requests", "stored"]
    columns = ("captures/1h", "captures/1d", "refusals/1h", "refusals/1d")

    def traffic_of(line: str) -> list[str]:  # right-aligned under each heading
        return [line[heading.index(n) : heading.index(n) + len(n)].strip() for n in columns]

    assert printed[2].split()[0] == ids["busy"] and traffic_of(printed[2]) == ["3", "3", "6", "6"]
    assert printed[3].split()[0] == ids["quiet"] and traffic_of(printed[3]) == ["1"] * 4
    assert printed[4] == (
        f"next: hookscope admin usage --limit 2 --sort traffic --after 2.{ids['quiet']}"
    )
