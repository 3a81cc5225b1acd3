"""A Python script (requests) that sends the captured request again."""

from __future__ import annotations

import base64
import re

from .shape import Shaped, Snippet, comment, has_dot_segments

# urllib3 adds these when not told otherwise; SKIP_HEADER keeps them out.
_OWN = ("User-Agent", "Accept-Encoding")
# Separators that HTTP allows in place of repeated headers of these names.
_JOINERS = {"cookie": "; "}
# What prepare() leaves alone; otherwise the URL is put back as captured after it.
_PLAIN_URL = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]*")


def snippet(request: Shaped, body_file: str | None = None) -> Snippet:
    """Build the script; the body is written into it (``body_file`` is for shell tools)."""
    notes = list(request.notes)
    headers, joined = _merged(request.headers)
    if joined:
        notes.append(
            f"requests holds one value per header name, so the values of {', '.join(joined)} "
            "are joined with ', ' (which HTTP reads the same)."
        )
    lines = ["import requests"]
    if request.body and request.text is None:
        lines.insert(0, "import base64")
    if any(not request.has(name) for name in _OWN):
        lines.append("from urllib3.util import SKIP_HEADER")
    lines += ["", f"url = {request.url!r}", "headers = {"]
    lines += [f"    {name!r}: {_value(value)}," for name, value in headers]
    lines += [f"    {name!r}: SKIP_HEADER," for name in _OWN if not request.has(name)]
    lines.append("}")
    data = ""
    if request.body:
        data = ", data=body"
        if request.text is not None:
            lines.append(f"body = {request.text!r}.encode()")
        else:
            lines.append(f"body = base64.b64decode({base64.b64encode(request.body).decode()!r})")
    lines += [
        "",
        "# Sent by itself, a prepared request carries these headers and no others",
        "# (requests.post() would add User-Agent, Accept, Accept-Encoding and Connection).",
        f"request = requests.Request({request.method!r}, url, headers=headers{data}).prepare()",
    ]
    if request.method != request.method.upper():
        lines.append(f"request.method = {request.method!r}  # prepare() upper-cases it")
    if has_dot_segments(request.url) or not _PLAIN_URL.fullmatch(request.url) or "%" in request.url:
        lines.append("request.url = url  # as captured: prepare() would re-quote the path")
        notes.append(
            "urllib3 still upper-cases percent-escapes and escapes characters a URL may not hold."
        )
    lines += [
        "response = requests.Session().send(request)",
        "print(response.status_code, response.text)",
    ]
    comments = comment("# ", notes)
    return Snippet("python", "\n".join(comments + lines) + "\n", notes)


def _merged(headers: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], list[str]]:
    """Fold repeated names (any case) into the first one's place."""
    merged: dict[str, tuple[str, list[str]]] = {}
    for name, value in headers:
        merged.setdefault(name.lower(), (name, []))[1].append(value)
    folded = [
        (name, _JOINERS.get(name.lower(), ", ").join(values)) for name, values in merged.values()
    ]
    return folded, [name for name, values in merged.values() if len(values) > 1]


def _value(value: str) -> str:
    # http.client sends str values as Latin-1; UTF-8 text goes as the bytes it was captured as.
    return repr(value) if value.isascii() else f"{value!r}.encode()"
