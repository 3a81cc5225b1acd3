"""API routes that send a capture out again, and what came of it: replay, attempts, copy as.

A replay is sent while the call waits (under gevent the client's sockets and name look-ups
are cooperative, so the worker serves others meanwhile), bounded by the HOOKSCOPE_OUTBOUND_*
settings and this process's call slots, and kept on the request as an attempt.
"""

from __future__ import annotations

import time

from flask import Response, current_app, jsonify, request

from app.domain import clock
from app.inspect import copy_as as snippets
from app.outbound import bounds, client, outcome
from app.outbound.outgoing import EditError, Outgoing, capture_headers, edited
from app.outbound.slots import Busy
from app.store import attempts
from app.store import requests as stored
from app.web.api import bp
from app.web.api.params import captured_or_404, json_object
from app.web.api.requests import SEQ
from app.web.errors import Refused
from app.web.limits import limited

# Refusals of the call itself: nothing was sent, nothing is kept.
_REFUSED = {"target_forbidden": 422, "bad_url": 400, "bad_request": 400}


@bp.post(f"/bins/<bin_id>/requests/{SEQ}/replay")
@limited("HOOKSCOPE_RATE_LIMIT_REPLAY")
def replay(bin_id: str, seq: int) -> tuple[Response, int]:
    """Send a capture again to ``url``, edited if asked; answer with the attempt."""
    captured = captured_or_404(bin_id, seq)
    data = json_object()
    url = data.get("url")
    if not isinstance(url, str) or not url:
        raise Refused(400, "bad_url", 'send {"url": "https://..."}: where to send the request')
    payload = stored.payload_of(captured)
    base = Outgoing(captured.method, url, capture_headers(payload.headers), payload.body)
    request_id, path, query = captured.id, captured.path, captured.query_string
    try:
        out = edited(base, data, int(time.time()), path=path, query=query)
    except EditError as err:
        raise Refused(400, err.code, err.message) from None
    # End the read transaction before waiting on the network: a snapshot held for the length
    # of a call would keep SQLite's WAL from being checkpointed (a pooled connection, on PG).
    stored.release()
    config = current_app.config
    started_at = clock.now()
    try:
        with bounds.slots_of(current_app).held(bin_id):
            result = client.send(
                out.method,
                out.url,
                out.headers,
                out.body,
                allow=bounds.allow_of(config),
                limits=bounds.limits_of(config),
            )
    except Busy as busy:
        raise Refused(429, "outbound_busy", busy.message, {"Retry-After": "1"}) from None
    if result.error in _REFUSED:
        raise Refused(_REFUSED[result.error], result.error, result.message)
    attempt = attempts.record_replay(
        request_id,
        bin_id,
        target=url,
        method=out.method,
        started_at=started_at,
        finished_at=clock.now(),
        outcome=outcome.columns(result),
        edited=out.edited,
        resigned=out.resigned,
    )
    if attempt is None:
        raise Refused(404, "request_not_found", f"bin {bin_id}'s request #{seq} was deleted")
    return jsonify(attempt.to_dict()), 200


@bp.get(f"/bins/<bin_id>/requests/{SEQ}/attempts")
def list_attempts(bin_id: str, seq: int) -> Response:
    """List the request's replays and auto-forward tries, newest first."""
    captured = captured_or_404(bin_id, seq)
    return jsonify(attempts=[a.to_dict() for a in attempts.of_request(captured.id)])


@bp.get(f"/bins/<bin_id>/requests/{SEQ}/copy-as")
def copy_as(bin_id: str, seq: int) -> Response:
    """Give the request as cURL, HTTPie, Python requests and fetch code.

    ``url`` sends it elsewhere (default: where it was captured). A binary or large body is read
    from ``body_file``, the name the raw download (``raw_url``) saves as.
    """
    captured = captured_or_404(bin_id, seq)
    payload = stored.payload_of(captured)
    url = request.args.get("url") or payload.url
    body_file = f"{bin_id}-{seq}.bin"
    made = snippets.copy_as_all(
        captured.method, url, payload.headers, payload.body, body_file=body_file
    )
    return jsonify(
        {
            "url": url,
            "body_file": body_file,
            "snippets": {tool: {"code": s.code, "notes": s.notes} for tool, s in made.items()},
        }
    )
