"""CSP violation reports: the policy names the endpoint; it logs each report as one safe line."""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Callable

import pytest
import requests
from flask_migrate import upgrade
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import create_app
from app.web import csp_reports

CSP_REPORT = "application/csp-report"
REPORTS_JSON = "application/reports+json"
# What a log line may hold: printable ASCII, one line.
ONE_SAFE_LINE = re.compile(r"[\x20-\x7e]*")


def legacy(**fields) -> str:
    """A body as report-uri sends it."""
    return json.dumps({"csp-report": fields})


def reporting_api(*bodies: dict, kind: str = "csp-violation") -> str:
    """A body as the Reporting API (report-to) sends it: a batch of reports."""
    return json.dumps([{"type": kind, "age": 3, "url": "http://x/", "body": b} for b in bodies])


@pytest.fixture
def logged(caplog) -> Callable[[], list[str]]:
    """Read the CSP report lines logged so far."""
    caplog.set_level(logging.INFO, logger="hookscope.csp")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "hookscope.csp"]


def test_pages_name_report_uri_over_http(client):
    response = client.get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "report-uri /csp-report" in csp
    # Chromium would obey report-to and then ignore report-uri, yet refuses Reporting-Endpoints
    # over plain HTTP: over HTTP the policy must not name report-to at all.
    assert "report-to" not in csp
    assert "Reporting-Endpoints" not in response.headers


def test_pages_add_the_reporting_api_over_https(client):
    response = client.get("/", base_url="https://hooks.example.com")
    csp = response.headers["Content-Security-Policy"]
    assert "report-uri /csp-report" in csp and "report-to csp" in csp
    assert response.headers["Reporting-Endpoints"] == 'csp="/csp-report"'


def test_a_report_uri_report_is_logged_as_one_line(client, logged):
    body = legacy(
        **{
            "document-uri": "http://127.0.0.1:8000/bins/abc",
            "violated-directive": "script-src-elem",
            "effective-directive": "script-src-elem",
            "blocked-uri": "inline",
            "line-number": 12,
            "column-number": 3,
            "source-file": "http://127.0.0.1:8000/static/js/bin.js",
            "script-sample": "alert(1)",
            "disposition": "enforce",
        }
    )
    response = client.post("/csp-report", data=body, content_type=CSP_REPORT)
    assert response.status_code == 204
    assert logged() == [
        "csp-report directive=script-src-elem blocked=inline"
        " document=http://127.0.0.1:8000/bins/abc source=http://127.0.0.1:8000/static/js/bin.js"
        " line=12 column=3 sample=alert(1) disposition=enforce"
    ]


def test_an_old_browsers_report_names_the_violated_directive(client, logged):
    body = legacy(**{"violated-directive": "img-src", "blocked-uri": "http://evil.example"})
    assert client.post("/csp-report", data=body, content_type=CSP_REPORT).status_code == 204
    assert logged()[0].startswith("csp-report directive=img-src blocked=http://evil.example")


def test_a_reporting_api_batch_logs_each_csp_violation(client, logged):
    body = json.loads(
        reporting_api(
            {"effectiveDirective": "style-src-attr", "blockedURL": "inline", "sample": "color:red"},
            {"effectiveDirective": "img-src", "blockedURL": "https://tracker.example/p.gif"},
        )
    )
    # Other report types that share the endpoint are not CSP violations.
    body.append({"type": "deprecation", "body": {"id": "x"}})
    response = client.post("/csp-report", data=json.dumps(body), content_type=REPORTS_JSON)
    assert response.status_code == 204
    lines = logged()
    assert len(lines) == 2
    assert "directive=style-src-attr blocked=inline" in lines[0] and "sample=color:red" in lines[0]
    assert "directive=img-src blocked=https://tracker.example/p.gif" in lines[1]


def test_a_big_batch_logs_the_first_ten_and_counts_the_rest(client, logged):
    batch = reporting_api(*[{"effectiveDirective": "img-src", "lineNumber": n} for n in range(25)])
    assert client.post("/csp-report", data=batch, content_type=REPORTS_JSON).status_code == 204
    lines = logged()
    assert len(lines) == 11
    assert lines[-1] == "csp-report not-logged=15"


def test_what_a_sender_controls_is_escaped_and_bounded(client, logged):
    hostile = "x\r\nFAKE csp-report directive=none \x1b[31m\u202egnp.exe\x00 " + "y" * 5000
    body = legacy(**{f: hostile for f in ("effective-directive", "blocked-uri", "script-sample")})
    assert client.post("/csp-report", data=body, content_type=CSP_REPORT).status_code == 204
    [line] = logged()
    assert ONE_SAFE_LINE.fullmatch(line)
    assert "\\r\\nFAKE\\x20csp-report" in line and "\\u202e" in line and "\\x1b" in line
    # Eight fields of at most 200 characters and "...", plus their names.
    assert len(line) < 8 * 220
    assert line.count(" ") == 8  # one space before each field: values carry none


def test_values_of_any_json_type_are_logged_as_text(client, logged):
    body = legacy(**{"blocked-uri": {"a": [1, None]}, "line-number": None, "column-number": 1e999})
    assert client.post("/csp-report", data=body, content_type=CSP_REPORT).status_code == 204
    [line] = logged()
    assert 'blocked={"a":\\x20[1,\\x20null]}' in line
    assert "line=- column=Infinity" in line


@pytest.mark.parametrize(
    "content_type, body, status",
    [
        (CSP_REPORT, "x" * (csp_reports.MAX_BYTES + 1), 413),
        (CSP_REPORT, "not json", 400),
        (CSP_REPORT, b"\xff\xfe\x00", 400),
        (CSP_REPORT, "[" * 8000, 400),  # nested too deep for the parser: still a plain 400
        (CSP_REPORT, '{"csp-report": 5}', 400),
        (CSP_REPORT, "5", 400),
        (REPORTS_JSON, '{"type": "csp-violation"}', 400),
        ("text/plain", legacy(), 415),
        ("application/x-www-form-urlencoded", "a=b", 415),
    ],
)
def test_garbage_gets_a_plain_refusal_and_logs_nothing(client, logged, content_type, body, status):
    response = client.post("/csp-report", data=body, content_type=content_type)
    assert response.status_code == status
    assert response.mimetype == "text/plain" and response.text.strip()
    assert logged() == []


def test_a_body_without_length_past_the_limit_gets_413(client, logged):
    response = client.post(
        "/csp-report",
        input_stream=io.BytesIO(b"[" * 100_000),
        headers={"Content-Type": CSP_REPORT, "Transfer-Encoding": "chunked"},
        # As gunicorn says of a chunked body: read it to its end, no length is declared.
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413
    assert logged() == []


def test_reports_need_no_csrf_token_even_with_the_session_cookie(app):
    browser = app.test_client()
    browser.get("/")  # now holds the session cookie, like the page that violated the policy
    browser.post("/api/v1/bins")  # the cookie carries a key, so cookie changes need the token
    response = browser.post("/csp-report", data=legacy(), content_type=CSP_REPORT)
    assert response.status_code == 204


def test_a_flood_of_reports_gets_429(tmp_path):
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'limited.db'}",
            "HOOKSCOPE_RATE_LIMIT_CSP_REPORTS": "3/minute",
        }
    )
    with app.app_context():
        upgrade()
    client = app.test_client()
    answers = [client.post("/csp-report", data=legacy(), content_type=CSP_REPORT) for _ in range(5)]
    assert [a.status_code for a in answers] == [204, 204, 204, 429, 429]
    assert int(answers[3].headers["Retry-After"]) > 0
    assert "HOOKSCOPE_RATE_LIMIT_CSP_REPORTS" in answers[3].text


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    content_type=st.sampled_from([CSP_REPORT, REPORTS_JSON, "application/json", "text/plain", ""]),
    body=st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(
                    st.sampled_from(["csp-report", "type", "body", "blocked-uri", "sample"])
                    | st.text(max_size=8),
                    inner,
                    max_size=4,
                )
            ),
            max_leaves=20,
        ).map(lambda v: json.dumps(v).encode()),
    ),
)
def test_no_body_makes_it_fail_or_log_an_unsafe_line(client, logged, content_type, body):
    response = client.post("/csp-report", data=body, content_type=content_type)
    assert response.status_code in (204, 400, 415)
    for line in logged():
        assert ONE_SAFE_LINE.fullmatch(line), line


def test_the_real_server_logs_a_report_and_refuses_a_big_one(server):
    url = server.url + "/csp-report"
    body = legacy(**{"effective-directive": "img-src", "blocked-uri": "http://e2e-marker.example"})
    response = requests.post(url, data=body, headers={"Content-Type": CSP_REPORT}, timeout=10)
    assert response.status_code == 204
    big = requests.post(url, data=b"[" * 100_000, headers={"Content-Type": CSP_REPORT}, timeout=10)
    assert big.status_code == 413
    deadline = time.monotonic() + 5
    while "blocked=http://e2e-marker.example" not in server.log_text():
        assert time.monotonic() < deadline, "the report never reached the server's log"
        time.sleep(0.05)
    [line] = [x for x in server.log_text().splitlines() if "e2e-marker" in x and "csp-report" in x]
    assert "[WARNING] csp-report directive=img-src blocked=http://e2e-marker.example" in line
