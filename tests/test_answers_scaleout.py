"""Failure rehearsal across processes: "fail the first N" counts in Redis, shared by every worker.

Needs HOOKSCOPE_TEST_POSTGRES_URL and HOOKSCOPE_TEST_REDIS_URL, like tests/test_scaleout.py.
"""

from __future__ import annotations

import os

import pytest
import requests
from engines import scaleout_unavailable
from harness import POSTGRES_URL, Gunicorn, drop_postgres_database, fresh_postgres_database

REDIS = os.environ.get("HOOKSCOPE_TEST_REDIS_URL")

if not (POSTGRES_URL and REDIS):
    scaleout_unavailable(
        "scale-out needs HOOKSCOPE_TEST_POSTGRES_URL and HOOKSCOPE_TEST_REDIS_URL", module=True
    )


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Two gunicorn masters on one PostgreSQL database and one Redis."""
    database = fresh_postgres_database()
    env = {"DATABASE_URL": database, "REDIS_URL": REDIS}
    a = Gunicorn(tmp_path_factory.mktemp("a"), env=env)
    b = Gunicorn(tmp_path_factory.mktemp("b"), env=env)
    try:
        a.start(), b.start()
        yield a, b
    finally:
        a.stop(), b.stop()
        drop_postgres_database(database)


def test_the_first_n_are_counted_across_processes(pair):
    a, b = pair
    bin_ = a.create_bin()
    rehearsal = {"first": 3, "per_header": "X-Delivery", "status": 503}
    changed = requests.patch(
        f"{a.url}/api/v1/bins/{bin_['id']}",
        json={"response": {"status": 200, "failure": rehearsal}},
        auth=a.auth,
        timeout=10,
    )
    assert changed.status_code == 200
    path = f"/h/{bin_['id']}"
    got = [
        requests.post(server.url + path, headers={"X-Delivery": "d-1"}, timeout=10).status_code
        for server in (a, b, a, b, a, b)
    ]
    assert got == [503, 503, 503, 200, 200, 200]
    # Both processes noted what they answered, in the same database.
    listed = requests.get(
        f"{b.url}/api/v1/bins/{bin_['id']}/requests",
        params={"delivery": "d-1"},
        auth=a.auth,
        timeout=10,
    ).json()["requests"]
    assert sorted(r["status"] for r in listed) == [200, 200, 200, 503, 503, 503]
