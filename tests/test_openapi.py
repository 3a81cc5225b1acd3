"""The OpenAPI description: valid, complete, and true of the real app under gunicorn."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import jsonschema_rs
import pytest
import requests
import schemathesis
from harness import Gunicorn
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.domain import bins, keys
from app.store import search
from app.web import openapi

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# Bodies the shared bin holds, so detail, form, files and raw answers are all exercised.
CAPTURES = [
    {"json": {"event": "paid", "amount": 12}},
    {"data": {"a": "1", "b": "two"}},
    {"files": {"upload": ("r.bin", b"\x00\xff\x10", "application/octet-stream")}},
    {"data": b"\x89PNG\r\n", "headers": {"Content-Encoding": "gzip"}},
]
# Fuzzed operations and the statuses they got, for the test that checks success was reached.
REACHED: dict[str, set[int]] = defaultdict(set)


def openapi_document() -> dict:
    """The description as stored, before the server fills in its address."""
    return json.loads((Path(openapi.__file__).parent / "openapi.json").read_text())


def served_spec(client) -> dict:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.content_type == "application/json"
    return response.json


def test_the_served_description_is_valid_openapi_3_1(client):
    document = served_spec(client)
    assert document["openapi"] == "3.1.0"
    schemathesis.openapi.from_dict(document).validate()
    for name, schema in document["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(schema), name


def flask_path(rule: str) -> str:
    return re.sub(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>", r"{\1}", rule)


def test_every_api_route_is_described_and_nothing_else(app, client):
    routes = {
        (flask_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    described = {
        (path, method)
        for path, item in served_spec(client)["paths"].items()
        if path.startswith("/api/v1/")
        for method in item
        if method != "parameters"
    }
    assert described == routes


def test_described_limits_are_the_servers(app, client):
    app.config.update(
        HOOKSCOPE_PUBLIC_URL="https://hooks.example.com",
        HOOKSCOPE_MAX_REQUESTS_CEILING=500,
        HOOKSCOPE_ALLOW_NEVER_EXPIRE=True,
    )
    document = served_spec(client)
    assert document["servers"] == [{"url": "https://hooks.example.com"}]
    schemas = document["components"]["schemas"]
    settings = schemas["BinSettings"]["properties"]
    assert settings["max_requests"]["maximum"] == 500
    assert settings["expires_after"]["type"] == ["integer", "null"]
    assert settings["name"]["maxLength"] == schemas["Bin"]["properties"]["name"]["maxLength"]
    assert settings["name"]["maxLength"] == bins.NAME_MAX
    assert settings["description"]["maxLength"] == bins.DESCRIPTION_MAX
    limit = document["components"]["parameters"]["Limit"]["schema"]
    assert (limit["maximum"], limit["default"]) == (bins.PAGE_LIMIT_MAX, bins.PAGE_LIMIT_DEFAULT)
    q = document["components"]["parameters"]["Q"]["schema"]
    assert q["maxLength"] == search.MAX_QUERY_CHARS
    bin_id = document["components"]["parameters"]["BinId"]["schema"]["pattern"]
    assert bin_id == f"^{keys.ID_PATTERN.pattern}$"


def test_the_docs_page_shows_every_operation_without_scripts(client):
    document = served_spec(client)
    response = client.get("/api/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    page = response.get_data(as_text=True)
    assert 'class="topbar"' in page  # it extends the site's base page
    assert "<script" not in page and "style=" not in page and "<style" not in page
    assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", page)  # nothing from elsewhere
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            section = page.split(f'id="op-{operation["operationId"]}"', 1)[1].split("</section>")[0]
            assert f">{method.upper()}</span>" in section and path in section
            for status in operation["responses"]:
                assert f"<code>{status}</code>" in section
    for name, schema in document["components"]["schemas"].items():
        section = page.split(f'id="schema-{name}"', 1)[1].split("</section>")[0]
        for field in schema.get("properties", {}):
            assert f"<code>{field}</code>" in section


class Target:
    """The bin the fuzzer aims at: a real id and key, holding a few captured requests."""

    def __init__(self) -> None:
        self.server: Gunicorn | None = None
        self.id = self.key = ""

    def start(self, server: Gunicorn) -> None:
        self.server = server
        self.id, self.key = self.fill()

    def fill(self) -> tuple[str, str]:
        """Create a bin holding the CAPTURES; return its id and read key."""
        created = self.server.create_bin()
        for capture in CAPTURES:
            sent = requests.post(f"{self.server.url}/h/{created['id']}/x?q=1", timeout=5, **capture)
            assert sent.status_code == 200
        return created["id"], created["read_key"]

    def aim(self, parameters: dict | None) -> st.SearchStrategy:
        """Keep the generated path parameters, or aim them at the real bin and a seq it holds."""
        if not parameters or "bin_id" not in parameters:
            return st.just(parameters)
        aimed = st.builds(
            lambda seq: (
                {**parameters, "bin_id": self.id} | ({"seq": seq} if "seq" in parameters else {})
            ),
            st.integers(1, len(CAPTURES)),
        )
        return st.one_of(aimed, st.just(parameters))


# schemathesis.pytest.from_fixture would load the live document lazily, but schemathesis 4.32
# reads Node._nodeid, which pytest 9.2 removed. So the document is loaded here from the file the
# server serves, test_the_live_server_serves_this_document proves them equal, and the cases are
# sent to the live server once the fixture has started it.
target = Target()
# Replays are left out: fuzzed, they would send requests to whatever hosts the fuzzer makes up
# (tests/test_replay.py covers them against local targets).
described = (
    schemathesis.openapi.from_dict(openapi_document())
    .exclude(tag="capture")
    .exclude(tag="outbound")
)
described.config.generation.update(max_examples=25, deterministic=True, database="none")
described.config.seed = 20261123
described.config.output.sanitization.update(enabled=False)  # show the real request
described.hook("flatmap_path_parameters")(lambda _context, parameters: target.aim(parameters))


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The real app under gunicorn with a bin to aim at: its own, as fuzzing changes things."""
    with Gunicorn(tmp_path_factory.mktemp("openapi")) as server:
        target.start(server)
        yield target


def test_the_live_server_serves_this_document(live):
    served = requests.get(f"{live.server.url}/api/v1/openapi.json", timeout=5).json()
    assert served == {**described.raw_schema, "servers": [{"url": live.server.url}]}


@described.parametrize()
def test_every_operation_answers_as_described(case, live):
    bin_id, key = live.id, live.key
    if case.method == "DELETE" and case.path_parameters.get("bin_id") == live.id:
        # Deleting goes to a copy, so the operations after this one still find the bin.
        bin_id, key = live.fill()
        case.path_parameters = {**case.path_parameters, "bin_id": bin_id}
    response = case.call_and_validate(
        base_url=live.server.url, headers={"Authorization": f"Bearer {key}"}, checks=CHECKS
    )
    REACHED[case.operation.label].add(response.status_code)


BIG = 2**63  # one past the largest integer SQLite stores
V1 = "/api/v1/bins"
ITEM = V1 + "/{bin_id}/requests/{seq}"


@pytest.mark.parametrize(
    ("method", "path", "seq", "query", "body"),
    [
        ("GET", ITEM, BIG, {}, None),
        ("GET", ITEM + "/raw", BIG, {}, None),
        ("PATCH", ITEM, BIG, {}, {"pinned": True}),
        ("DELETE", ITEM, BIG, {}, None),
        ("GET", V1 + "/{bin_id}/requests", None, {"before": BIG}, None),
        ("GET", V1 + "/{bin_id}/requests", None, {"since": "0001-01-01T00:00:00+01:00"}, None),
        ("GET", V1 + "/{bin_id}/requests", None, {"until": "9999-12-31T23:59:59-01:00"}, None),
        ("GET", V1 + "/{bin_id}/requests", None, {"q": 'NEAR(x y) OR "z* {bin}:*'}, None),
        ("GET", V1 + "/{bin_id}/requests", None, {"q": "x" * 7_000}, None),
        ("GET", V1 + "/{bin_id}/requests", None, {"q": "\x00'\"\\"}, None),
        ("POST", V1, None, {}, {"ingest_auth": {"type": ["basic"]}}),
        ("PATCH", V1 + "/{bin_id}", None, {}, {"ingest_auth": {"type": {}}}),
        ("POST", V1, None, {}, {"name": "\ud800"}),
        ("PATCH", V1 + "/{bin_id}", None, {}, {"description": "\udfff"}),
        ("POST", V1, None, {}, {"ingest_auth": {"type": "bearer", "token": "\ud800"}}),
    ],
    ids=[
        "huge-seq-detail",
        "huge-seq-raw",
        "huge-seq-pin",
        "huge-seq-delete",
        "huge-before",
        "since-before-year-1",
        "until-after-year-9999",
        "search-engine-syntax",
        "search-7-kb",  # a 10 KB query line gets gunicorn's 414 first
        "search-nul-and-quotes",
        "ingest-type-list",
        "ingest-type-object",
        "lone-surrogate-name",
        "lone-surrogate-description",
        "lone-surrogate-token",
    ],
)
def test_edge_values_are_refused_or_answered_never_crash(live, method, path, seq, query, body):
    """Inputs the fuzzer meets only rarely: out-of-range numbers and times, odd JSON."""
    parameters = {"bin_id": live.id} | ({"seq": seq} if seq is not None else {})
    sent = {"body": body} if body is not None else {}
    case = described[path][method].Case(path_parameters=parameters, query=query, **sent)
    case.call_and_validate(
        base_url=live.server.url, headers={"Authorization": f"Bearer {live.key}"}, checks=CHECKS
    )


def test_the_fuzzer_reached_every_success():
    if not REACHED:
        pytest.skip("the fuzzing test did not run")
    missed = {label: codes for label, codes in REACHED.items() if not any(c < 300 for c in codes)}
    assert not missed
