"""Storage budgets: what a bin keeps within its bytes, what the instance refuses when full.

A request counts its body, its header list as stored and its URL (app/domain/budgets.py); each
bin's counter is kept by whatever adds or removes requests, and must always equal the sum.
"""

from __future__ import annotations

import json
import socket
import time
from datetime import timedelta

import pytest
import requests
from flask_migrate import downgrade, upgrade
from harness import SUITE_DATABASE, Gunicorn
from sqlalchemy import text

from app import create_app
from app.domain import budgets, clock
from app.extensions import db
from app.store import bins
from app.store.budget import Figures, InstanceBudget

KIB = 1024
# What each request holds as stored, summed per bin by the database itself.
SIZE_SQL = {
    "sqlite": "length(CAST(p.body AS BLOB)) + length(CAST(p.headers AS BLOB))"
    " + length(CAST(p.url AS BLOB))",
    "postgresql": "octet_length(p.body) + octet_length(p.headers::text) + octet_length(p.url)",
}


def summed(app) -> tuple[dict[str, int], dict[str, int]]:
    """Per bin: the counter kept in its row, and the sum over what its requests hold."""
    with app.app_context():
        size = SIZE_SQL[db.engine.dialect.name]
        with db.engine.connect() as conn:
            kept = dict(conn.execute(text("SELECT id, stored_bytes FROM bins")).all())
            counted = dict(
                conn.execute(
                    text(
                        f"SELECT b.id, coalesce(sum({size}), 0) FROM bins AS b"  # noqa: S608
                        " LEFT JOIN requests AS r ON r.bin_id = b.id"
                        " LEFT JOIN payloads AS p ON p.request_id = r.id GROUP BY b.id"
                    )
                ).all()
            )
    return kept, {k: int(v) for k, v in counted.items()}


def size_of(client, bin_id: str, seq: int) -> int:
    """What one request holds as stored, worked out from what the API shows of it."""
    detail = client.get(f"/api/v1/bins/{bin_id}/requests/{seq}").json
    raw = client.get(f"/api/v1/bins/{bin_id}/requests/{seq}/raw").data
    return budgets.stored_size(len(raw), json.dumps(detail["headers"]), detail["url"])


def seqs(client, bin_id: str) -> list[int]:
    page = client.get(f"/api/v1/bins/{bin_id}/requests?limit=200").json
    return [r["seq"] for r in page["requests"]]


def test_a_bin_past_its_byte_budget_keeps_exactly_the_newest_requests_that_fit(client):
    budget = 20 * KIB
    bin_id = client.post("/api/v1/bins", json={"max_bytes": budget}).json["id"]
    body = b"x" * 3000
    assert client.post(f"/h/{bin_id}", data=body).status_code == 200
    client.patch(f"/api/v1/bins/{bin_id}/requests/1", json={"pinned": True})
    for _ in range(11):
        assert client.post(f"/h/{bin_id}", data=body).status_code == 200

    each = size_of(client, bin_id, 1)  # every capture here is the same size
    fit = budget // each
    assert fit < 12  # the bin was filled past its budget
    # The pin stays, and beside it exactly the newest that fit: seq 12 down.
    assert seqs(client, bin_id) == [*range(12, 12 - (fit - 1), -1), 1]
    shown = client.get(f"/api/v1/bins/{bin_id}").json
    assert shown["stored_bytes"] == fit * each <= budget < (fit + 1) * each
    assert shown["max_bytes"] == budget and shown["request_count"] == fit


def test_a_lower_budget_drops_the_oldest_at_the_next_capture_never_the_new_one(client, new_bin):
    bin_id = new_bin["id"]
    for _ in range(20):
        client.post(f"/h/{bin_id}", data=b"y" * 2000)
    client.patch(f"/api/v1/bins/{bin_id}", json={"max_bytes": 16 * KIB})
    big = b"z" * (15 * KIB)  # fits alone, with no room for anything else
    assert client.post(f"/h/{bin_id}", data=big).status_code == 200
    assert seqs(client, bin_id) == [21]
    assert client.get(f"/api/v1/bins/{bin_id}/requests/21/raw").data == big


def test_pinned_requests_stay_even_when_they_fill_the_budget(client):
    bin_id = client.post("/api/v1/bins", json={"max_bytes": 16 * KIB}).json["id"]
    for seq in (1, 2):
        client.post(f"/h/{bin_id}", data=b"p" * 7000)
        client.patch(f"/api/v1/bins/{bin_id}/requests/{seq}", json={"pinned": True})
    for _ in range(3):
        assert client.post(f"/h/{bin_id}", data=b"n" * 3000).status_code == 200
    # Nothing unpinned fits beside the pins but the newest, which is never dropped.
    assert seqs(client, bin_id) == [5, 2, 1]


def test_a_body_bigger_than_the_bins_budget_is_refused_naming_the_setting(client):
    bin_id = client.post("/api/v1/bins", json={"max_bytes": 16 * KIB}).json["id"]
    refused = client.post(f"/h/{bin_id}", data=b"b" * (17 * KIB))
    assert refused.status_code == 413
    assert "max_bytes" in refused.text and "HOOKSCOPE_BIN_MAX_BYTES" in refused.text
    # A body that fits, whose headers and URL take the request past the budget, is refused too.
    padded = client.post(f"/h/{bin_id}", data=b"b" * (16 * KIB - 10), headers={"X-Pad": "p" * 200})
    assert padded.status_code == 413 and "request is" in padded.text
    assert client.get(f"/api/v1/bins/{bin_id}").json["last_seq"] == 0
    # Counted where the bin's owner sees refusals, under a reason of its own.
    refused = client.get(f"/api/v1/bins/{bin_id}/usage").json["refused"]["by_reason"]
    assert refused["bin_budget"]["last_hour"] == 2
    assert refused["bin_budget"]["setting"] == "HOOKSCOPE_BIN_MAX_BYTES"


def test_a_chunked_body_over_the_budget_is_refused_while_it_is_read(server):
    created = server.create_bin()
    api = f"{server.url}/api/v1/bins/{created['id']}"
    assert requests.patch(api, json={"max_bytes": 16 * KIB}, auth=server.auth, timeout=5).ok

    def chunks():
        for _ in range(40):
            yield b"c" * KIB

    refused = requests.post(created["capture_url"], data=chunks(), timeout=10)
    assert refused.status_code == 413 and "max_bytes" in refused.text
    declared = requests.post(created["capture_url"], data=b"d" * (20 * KIB), timeout=10)
    assert declared.status_code == 413 and "20.0 KiB" in declared.text
    assert requests.get(api, auth=server.auth, timeout=5).json()["last_seq"] == 0


@pytest.mark.parametrize("value", [16 * KIB - 1, 100 * 1024 * 1024 + 1, True, "20000", 1.5])
def test_max_bytes_is_a_whole_number_within_the_servers_ceiling(client, new_bin, value):
    refused = client.patch(f"/api/v1/bins/{new_bin['id']}", json={"max_bytes": value})
    assert refused.status_code == 400
    assert refused.json["error"] == "bad_max_bytes"
    assert "HOOKSCOPE_BIN_MAX_BYTES" in refused.json["message"]


def test_null_max_bytes_follows_the_servers_ceiling(app, client, new_bin):
    url = f"/api/v1/bins/{new_bin['id']}"
    assert new_bin["max_bytes"] == app.config["HOOKSCOPE_BIN_MAX_BYTES"]
    assert client.patch(url, json={"max_bytes": 32 * KIB}).json["max_bytes"] == 32 * KIB
    assert client.patch(url, json={"max_bytes": None}).json["max_bytes"] == 100 * 1024 * 1024


def test_the_byte_counters_follow_every_way_requests_go(app, client):
    """Retention by count and by bytes, deleting one, clearing, deleting the bin, pruning."""
    by_count = client.post("/api/v1/bins", json={"max_requests": 3}).json["id"]
    by_bytes = client.post("/api/v1/bins", json={"max_bytes": 16 * KIB}).json["id"]
    cleared = client.post("/api/v1/bins").json["id"]
    doomed = client.post("/api/v1/bins").json["id"]
    for i in range(6):
        for bin_id in (by_count, by_bytes, cleared, doomed):
            body = bytes([65 + i]) * (1000 * (i + 1))
            assert client.post(f"/h/{bin_id}/p{i}?q={i}", data=body).status_code == 200
    client.patch(f"/api/v1/bins/{cleared}/requests/2", json={"pinned": True})
    kept, counted = summed(app)
    assert kept == counted and kept[by_count] > 0 and kept[by_bytes] <= 16 * KIB

    assert client.delete(f"/api/v1/bins/{by_count}/requests/6").status_code == 204
    assert client.delete(f"/api/v1/bins/{cleared}/requests").json == {"deleted": 5}
    kept, counted = summed(app)
    assert kept == counted and kept[cleared] == size_of(client, cleared, 2)

    client.delete(f"/api/v1/bins/{cleared}/requests?include_pinned=true")
    assert client.delete(f"/api/v1/bins/{doomed}").status_code == 204
    client.patch(f"/api/v1/bins/{by_bytes}", json={"expires_after": 60})
    with app.app_context():
        assert bins.prune(clock.now() + timedelta(minutes=2)) == [by_bytes]
    kept, counted = summed(app)
    assert kept == counted == {by_count: kept[by_count], cleared: 0}
    with app.app_context(), db.engine.connect() as conn:
        total = conn.execute(text("SELECT sum(stored_bytes) FROM bins")).scalar()
        rows = conn.execute(text("SELECT sum(stored_bytes) FROM requests")).scalar()
    assert total == rows == kept[by_count]


def test_requests_stored_before_the_counters_existed_are_counted_once(app, client, new_bin):
    for i in range(3):
        client.post(f"/h/{new_bin['id']}/{i}", data=b"old" * (i + 1))
    with app.app_context():
        downgrade(revision="-1")  # to the revision before the byte counters
        upgrade()
    kept, counted = summed(app)
    assert kept == counted and kept[new_bin["id"]] > 0


def test_a_disk_below_its_margin_refuses_every_capture(tmp_path):
    if SUITE_DATABASE == "postgres":
        pytest.skip("the free-space check watches the SQLite file's volume")
    # More free space kept than any disk has: every capture finds the disk too full.
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'hookscope.db'}",
            "RATELIMIT_ENABLED": False,
            "HOOKSCOPE_MIN_FREE_DISK_BYTES": 2**62,
        }
    )
    with app.app_context():
        upgrade()
    client = app.test_client()
    created = client.post("/api/v1/bins").json
    refused = client.post(f"/h/{created['id']}", data=b"x")
    assert refused.status_code == 507
    assert "HOOKSCOPE_MIN_FREE_DISK_BYTES" in refused.text and "nothing was stored" in refused.text
    shown = client.get(f"/api/v1/bins/{created['id']}", headers=bearer(created)).json
    assert shown["last_seq"] == 0
    assert client.get("/readyz").json["storage"]["disk_low"] is True
    with app.app_context():
        db.engine.dispose()


def bearer(created: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {created['read_key']}"}


def instance(tmp_path, budget: int) -> Gunicorn:
    return Gunicorn(
        tmp_path,
        env={
            "HOOKSCOPE_MAX_STORAGE_BYTES": str(budget),
            "HOOKSCOPE_STORAGE_CHECK_SECONDS": "0",  # every capture reads the figures again
            "HOOKSCOPE_MIN_FREE_DISK_BYTES": "0",
        },
    )


def test_at_the_instance_budget_the_heaviest_bin_is_refused_and_a_light_one_captures(tmp_path):
    budget = 64 * KIB
    with instance(tmp_path, budget) as server:
        heavy, light = server.create_bin(), server.create_bin()
        answers: dict[str, list[int]] = {heavy["id"]: [], light["id"]: []}

        def send(bin_: dict, size: int) -> requests.Response:
            sent = requests.post(bin_["capture_url"], data=b"h" * size, timeout=10)
            answers[bin_["id"]].append(sent.status_code)
            return sent

        for _ in range(40):  # about 15 of these reach the budget
            if send(heavy, 4 * KIB).status_code != 200:
                break
        refused = send(heavy, 4 * KIB)
        for _ in range(3):
            assert send(light, 2 * KIB).status_code == 200
        assert send(heavy, 10).status_code == 507
        ready = requests.get(server.url + "/readyz", timeout=5).json()
        usage = f"{server.url}/api/v1/bins/{heavy['id']}/usage"
        deadline = time.monotonic() + 30  # each worker adds its counts every 2 s
        while time.monotonic() < deadline:
            counted = requests.get(usage, auth=server.auth, timeout=5).json()["refused"]
            if counted["last_hour"] >= answers[heavy["id"]].count(507):
                break
            time.sleep(0.2)
        stored = {
            bin_id: requests.get(
                f"{server.url}/api/v1/bins/{bin_id}/requests?limit=200",
                auth=server.auth,
                timeout=5,
            ).json()["requests"]
            for bin_id in answers
        }
        log = server.log_text()
    assert refused.status_code == 507
    assert "HOOKSCOPE_MAX_STORAGE_BYTES" in refused.text and "fair share" in refused.text
    assert answers[heavy["id"]].count(507) >= 2
    # Nothing answered 200 is missing, nothing refused was stored.
    for bin_id, statuses in answers.items():
        assert sorted(r["seq"] for r in stored[bin_id]) == list(range(1, statuses.count(200) + 1))
    assert ready["storage"]["over_budget"] is True
    assert ready["storage"]["max_storage_bytes"] == budget
    assert "storage budget reached" in log and "HOOKSCOPE_MAX_STORAGE_BYTES" in log
    assert "status=507" in log
    assert counted["by_reason"]["storage_budget"]["last_hour"] == answers[heavy["id"]].count(507)


def test_the_gate_refuses_before_reading_a_body_it_would_not_keep(tmp_path):
    """A 507 decided before the body is read does not wait for a big body to arrive."""
    with instance(tmp_path, 1) as server:
        created = server.create_bin()
        requests.post(created["capture_url"], data=b"first", timeout=10)
        # The bin holds everything and the instance is over budget: refused on its head alone.
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            head = (
                f"POST /h/{created['id']} HTTP/1.1\r\nHost: x\r\n"
                f"Content-Length: {5 * 1024 * 1024}\r\n\r\n"
            )
            sock.sendall(head.encode())
            answer = sock.recv(65536).decode()
    assert answer.startswith("HTTP/1.1 507")
    assert "Connection: close" in answer or "connection: close" in answer.lower()


def test_a_failing_figures_read_is_tried_again_once_an_interval_not_once_a_capture():
    """While the database fails (with no figures read yet), captures do not each ask again."""
    now = [100.0]
    calls = []

    def read(limits, recheck):
        calls.append(now[0])
        if len(calls) < 3:
            raise OSError("database is locked")
        return Figures(stored_bytes=10, active_bins=1, free_disk_bytes=None)

    budget = InstanceBudget(budgets.Limits(1000, 0), read, interval=5, clock=lambda: now[0])
    for _ in range(50):
        assert budget.refusal("bin", 10) is None  # no figures: never refused for want of them
    assert calls == [100.0]
    now[0] = 104.0
    budget.refusal("bin", 10)
    assert calls == [100.0]
    now[0] = 105.0
    budget.refusal("bin", 10)
    assert calls == [100.0, 105.0]
    now[0] = 110.0
    budget.refusal("bin", 10)
    budget.refusal("bin", 10)
    assert calls == [100.0, 105.0, 110.0]
    assert budget.figures()["stored_bytes"] == 10
