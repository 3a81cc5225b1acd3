"""A cURL command that sends the captured request again, byte for byte where cURL can."""

from __future__ import annotations

from . import shell
from .shape import INLINE_MAX_BYTES, Shaped, Snippet, has_dot_segments

# cURL adds these when not told otherwise; an empty "Name:" keeps them out.
_OWN = ("User-Agent", "Accept")


def snippet(request: Shaped, body_file: str | None = None) -> Snippet:
    """Build the command; a binary or large body is read from ``body_file`` when given."""
    notes = list(request.notes)
    first = ["curl"]
    if any(c in request.url for c in "[]{}"):
        first.append("--globoff")  # else cURL reads them as a URL pattern
    if has_dot_segments(request.url):
        first.append("--path-as-is")  # else cURL removes /./ and /../
    body = request.body
    if request.method == "HEAD":
        first.append("--head")  # -X HEAD would wait for a body that never comes
        if body:
            notes.append("The body is left out: cURL sends none with HEAD.")
            body = b""
    elif request.method != ("POST" if body else "GET"):
        first += ["-X", shell.quote(request.method)]
    first.append(shell.quote(request.url))
    # "Name;" is how cURL sends an empty header; "Name:" would remove it.
    lines = [first] + [
        ["-H", shell.quote(f"{name}: {value}" if value.strip() else f"{name};")]
        for name, value in request.headers
    ]
    lines += [["-H", f"'{name}:'"] for name in _OWN if not request.has(name)]
    before = ""
    if body:
        if not request.has("Content-Type"):
            lines.append(["-H", "'Content-Type:'"])  # else form-urlencoded
        if len(body) > 1024 and not request.has("Expect"):
            lines.append(["-H", "'Expect:'"])  # else older cURL waits for 100 Continue
        if request.text is not None and (len(body) <= INLINE_MAX_BYTES or not body_file):
            lines.append(["--data-raw", shell.quote(request.text)])  # no "@file" reading
        elif body_file:
            lines.append(["--data-binary", shell.quote("@" + body_file)])
        else:
            before = shell.decoded_base64(body)
            lines.append(["--data-binary", "@-"])
    if shell.ansi_quoted(lines):
        notes.append(shell.BASH_NOTE)
    return Snippet("curl", shell.command(lines, before=before), notes)
