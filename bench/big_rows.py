"""Realistic captured requests, generated fast, and written straight into the app's tables.

Rows come from a pool of 64 templates (GitHub, Stripe, Shopify, Slack, Twilio, plain text, XML and
bodiless GETs; bodies 300-1,000 bytes, 8-9 headers) in which only the sequence number, the size
header and the time change. Columns are read from the database and compared with what this module
fills, so a schema change fails loudly here instead of producing rows the app cannot read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

# What this module fills, per table, in the order of the tuples it yields.
REQUEST_COLUMNS = (
    "id", "bin_id", "seq", "method", "path", "query_string", "content_type", "body_size",
    "remote_addr", "received_at", "status", "rejected", "pinned",
)  # fmt: skip
PAYLOAD_COLUMNS = ("request_id", "url", "http_version", "headers", "body")
POOL_SIZE = 64
# One capture every 0.6 s: a million requests span about a week, ending now.
STEP = timedelta(milliseconds=600)

_KINDS = [
    # (method, path, query, content type, user agent, remote addr, extra headers, body maker)
    ("POST", "/github", "", "application/json", "GitHub-Hookshot/7f3c2a1", "140.82.115.61",
     [["X-GitHub-Event", "push"], ["X-GitHub-Delivery", "1b7e5c1e-@SEQ@"],
      ["X-Hub-Signature-256", "sha256=" + "9f" * 32]],
     lambda pad: {"ref": "refs/heads/main", "before": "a1" * 20, "after": "b2" * 20,
                  "repository": {"id": 123456, "full_name": "acme/shop", "private": True},
                  "pusher": {"name": "octocat", "email": "octocat@example.com"},
                  "head_commit": {"id": "@SEQ@", "message": "Fix checkout " + pad}}),
    ("POST", "/github", "", "application/json", "GitHub-Hookshot/7f3c2a1", "140.82.115.62",
     [["X-GitHub-Event", "issues"], ["X-GitHub-Delivery", "2c8f6d2f-@SEQ@"],
      ["X-Hub-Signature-256", "sha256=" + "3e" * 32]],
     lambda pad: {"action": "opened", "issue": {"number": "@SEQ@", "title": "Crash on save",
                  "body": pad, "user": {"login": "someone"}, "labels": [{"name": "bug"}]}}),
    ("POST", "/stripe/events", "", "application/json; charset=utf-8",
     "Stripe/1.0 (+https://stripe.com/docs/webhooks)", "54.187.174.169",
     [["Stripe-Signature", "t=1732363200,v1=" + "5d" * 32], ["Cache-Control", "no-cache"]],
     lambda pad: {"id": "evt_@SEQ@", "object": "event", "type": "payment_intent.succeeded",
                  "data": {"object": {"id": "pi_@SEQ@", "amount": 4200, "currency": "eur",
                                      "status": "succeeded", "description": pad}},
                  "livemode": False, "pending_webhooks": 1}),
    ("POST", "/shopify/orders", "shop=acme.myshopify.com", "application/json",
     "Shopify-Captain-Hook", "35.203.12.7",
     [["X-Shopify-Topic", "orders/create"], ["X-Shopify-Hmac-Sha256", "q" * 44],
      ["X-Shopify-Shop-Domain", "acme.myshopify.com"]],
     lambda pad: {"id": "@SEQ@", "email": "buyer@example.com", "total_price": "59.90",
                  "line_items": [{"title": "Mug", "quantity": 2, "price": "19.95"}],
                  "note": pad}),
    ("POST", "/slack/commands", "", "application/x-www-form-urlencoded",
     "Slackbot 1.0 (+https://api.slack.com/robots)", "3.90.12.45",
     [["X-Slack-Signature", "v0=" + "ab" * 32], ["X-Slack-Request-Timestamp", "1732363200"]],
     None),
    ("PUT", "/twilio/status", "attempt=1", "application/x-www-form-urlencoded", "TwilioProxy/1.1",
     "54.172.60.0", [["X-Twilio-Signature", "Zm9v" * 7], ["I-Twilio-Idempotency-Token", "@SEQ@"]],
     None),
    ("POST", "/logs", "", "text/plain; charset=utf-8", "curl/8.5.0", "10.0.0.7",
     [["X-Request-Id", "req-@SEQ@"]], None),
    ("GET", "/health", "probe=@SEQ@", None, "kube-probe/1.29", "10.0.0.9", [["Accept", "*/*"]],
     None),
]  # fmt: skip


def _body(kind: int, i: int) -> bytes:
    method, path, query, ctype, _, _, _, make = _KINDS[kind]
    pad = "lorem ipsum dolor sit amet " * ((i * 7) % 24)
    if make is not None:
        return json.dumps(make(pad), separators=(",", ":")).encode()
    if method == "GET":
        return b""
    if ctype.startswith("application/x-www-form"):
        return (
            "token=gIkuvaNzQIHg97ATvDxqgjtO&team_id=T0001&channel_name=general"
            "&user_name=steve&command=%2Fdeploy&text=@SEQ@+" + pad.replace(" ", "+")
        ).encode()
    return (f"@SEQ@ INFO checkout finished in 231 ms; {pad}\n" * 3).encode()


def _pool(bin_id: str, host: str) -> list[tuple]:
    """Build the templates: everything but the sequence number, size and time is fixed."""
    pool = []
    for i in range(POOL_SIZE):
        kind = i % len(_KINDS)
        method, path, query, ctype, agent, addr, extra, _ = _KINDS[kind]
        body = _body(kind, i)
        headers = [["Host", host], ["User-Agent", agent], ["Accept-Encoding", "gzip"]]
        if ctype:
            headers += [["Content-Type", ctype], ["Content-Length", "\0LEN\0"]]
        headers += [*extra, ["X-Forwarded-Proto", "https"], ["Connection", "keep-alive"]]
        head_json = json.dumps(headers)
        target = f"/h/{bin_id}{path}" + (f"?{query}" if query else "")
        pool.append((method, path, query, ctype, addr, body, head_json, f"http://{host}{target}"))
    return pool


def rows(
    bin_id: str, n: int, host: str, dialect: str, batch: int = 20_000
) -> Iterator[tuple[list[tuple], list[tuple]]]:
    """Yield batches of (request rows, payload rows) for seq 1..n, ids 1..n, oldest first.

    ``dialect`` "sqlite" gives the values SQLAlchemy stores there (text times, 0/1 booleans);
    "postgresql" gives Python values for psycopg's COPY.
    """
    pool = _pool(bin_id, host)
    start = datetime.now(UTC).replace(tzinfo=None) - STEP * n
    sqlite = dialect == "sqlite"
    no = 0 if sqlite else False
    reqs: list[tuple] = []
    pays: list[tuple] = []
    for seq in range(1, n + 1):
        method, path, query, ctype, addr, body, head_json, url = pool[seq % POOL_SIZE]
        s = str(seq)
        body = body.replace(b"@SEQ@", s.encode())
        when = start + STEP * seq
        if sqlite:
            # SQLAlchemy's SQLite DATETIME storage format (always with microseconds).
            when = f"{when:%Y-%m-%d %H:%M:%S}.{when.microsecond:06d}"
        reqs.append(
            (seq, bin_id, seq, method, path, query.replace("@SEQ@", s), ctype, len(body), addr,
             when, 200, no, no)
        )  # fmt: skip
        headers = head_json.replace("\\u0000LEN\\u0000", str(len(body))).replace("@SEQ@", s)
        pays.append((seq, url.replace("@SEQ@", s), "HTTP/1.1", headers, body))
        if len(reqs) >= batch:
            yield reqs, pays
            reqs, pays = [], []
    if reqs:
        yield reqs, pays


def check_columns(table: str, in_db: dict[str, bool], filled: tuple[str, ...]) -> list[str]:
    """Compare the database's columns (name -> may be left out) with the ones filled here.

    Raises when a filled column is gone or a required one is not filled; returns notes about
    optional columns left to their defaults.
    """
    missing = [c for c in filled if c not in in_db]
    required = [c for c, optional in in_db.items() if c not in filled and not optional]
    if missing or required:
        raise RuntimeError(
            f"{table}: schema changed; bench/big_rows.py fills {missing} that the database lacks"
            f" and not {required} that it requires"
        )
    return [f"{table}.{c} left to its default" for c in in_db if c not in filled]
