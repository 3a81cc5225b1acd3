"""A JavaScript fetch() call (Node 18+ or a browser) that sends the captured request again."""

from __future__ import annotations

import base64
import json
import re

from .shape import Shaped, Snippet, comment, has_dot_segments, to_latin1

# A browser's fetch refuses to set these, silently (the Fetch standard's forbidden names).
BROWSER_FORBIDDEN = frozenset(
    {
        "accept-charset", "accept-encoding", "access-control-request-headers",
        "access-control-request-method", "connection", "content-length", "cookie", "cookie2",
        "date", "dnt", "expect", "host", "keep-alive", "origin", "referer", "set-cookie", "te",
        "trailer", "transfer-encoding", "upgrade", "via",
    }
)  # fmt: skip
BROWSER_FORBIDDEN_PREFIXES = ("proxy-", "sec-")
# Node's fetch (undici) throws rather than send these names, or values with control characters.
_NODE_REFUSES = frozenset({"expect"})
_CONTROL = re.compile(r"[^\t\x20-\x7e\x80-\xff]")
_NO_BODY = frozenset({"GET", "HEAD"})  # fetch throws when given a body with these


def snippet(request: Shaped, body_file: str | None = None) -> Snippet:
    """Build the call; the body is written into it (``body_file`` is for shell tools)."""
    notes = list(request.notes)
    headers = [(n, v) for n, v in request.headers if not _node_refuses(n, v)]
    refused = [n for n, v in request.headers if _node_refuses(n, v)]
    if refused:
        notes.append(f"Left out, as fetch in Node refuses to send them: {', '.join(refused)}.")
    forbidden = [n for n, _ in headers if _browser_forbids(n)]
    if forbidden:
        notes.append(f"A browser will not send {', '.join(forbidden)}; Node does.")
    if len({n.lower() for n, _ in headers}) < len(headers):
        notes.append("fetch joins repeated headers into one, values separated by ', '.")
    notes.append(
        "fetch adds headers of its own where these have none (Node: accept, "
        "accept-language, accept-encoding, sec-fetch-mode, user-agent)."
    )
    if has_dot_segments(request.url):
        notes.append("fetch removes the URL's . and .. segments, as the URL standard says.")
    if request.method.upper() in ("CONNECT", "TRACE", "TRACK"):
        notes.append(f"fetch refuses the method {request.method}.")
    options = [f"  method: {json.dumps(request.method)},", "  headers: ["]
    options += [f"    [{json.dumps(n)}, {json.dumps(to_latin1(v))}]," for n, v in headers]
    options.append("  ],")
    if not headers:
        options[1:] = ["  headers: [],"]
    if request.body and request.method.upper() in _NO_BODY:
        notes.append(f"The body is left out: fetch sends none with {request.method.upper()}.")
    elif request.body:
        options.append(f"  body: {_body(request)},")
    lines = comment("// ", notes)
    lines += [f"fetch({json.dumps(request.url)}, {{", *options, "}).then(async (response) => {"]
    lines += ["  console.log(response.status, await response.text());", "});"]
    return Snippet("fetch", "\n".join(lines) + "\n", notes)


def _body(request: Shaped) -> str:
    if request.text is None:
        encoded = base64.b64encode(request.body).decode()
        return f"Uint8Array.from(atob({json.dumps(encoded)}), (c) => c.charCodeAt(0))"
    if request.has("Content-Type"):
        return json.dumps(request.text)
    # A string body would be sent with Content-Type: text/plain;charset=UTF-8.
    return f"new TextEncoder().encode({json.dumps(request.text)})"


def _node_refuses(name: str, value: str) -> bool:
    return name.lower() in _NODE_REFUSES or bool(_CONTROL.search(to_latin1(value)))


def _browser_forbids(name: str) -> bool:
    lower = name.lower()
    return lower in BROWSER_FORBIDDEN or lower.startswith(BROWSER_FORBIDDEN_PREFIXES)
