"""An HTTPie (3.0 or later) command that sends the captured request again."""

from __future__ import annotations

from . import shell
from .shape import INLINE_MAX_BYTES, Shaped, Snippet, has_dot_segments

# HTTPie and requests add these when not told otherwise; an empty "Name:" keeps them out.
_OWN = ("Accept", "Accept-Encoding", "Connection", "User-Agent")
# Characters HTTPie reads as item separators (Name:value, name=value, name:=json, @file, ...).
_SEPARATORS = frozenset(":;=@")


def snippet(request: Shaped, body_file: str | None = None) -> Snippet:
    """Build the command; a binary or large body is read from ``body_file`` when given."""
    notes = list(request.notes)
    first = ["http"]
    if has_dot_segments(request.url):
        first.append("--path-as-is")
    lines = [first]
    before = after = ""
    body = request.body
    if body and request.text is not None and (len(body) <= INLINE_MAX_BYTES or not body_file):
        first.append("--ignore-stdin")
        lines += [["--raw", shell.quote(request.text)], []]
    elif body and body_file:
        after = "< " + shell.quote(body_file)
    elif body:
        before = shell.decoded_base64(body)
    else:
        first.append("--ignore-stdin")  # else a script's stdin would become the body
    lines[-1] += [shell.quote(request.method), shell.quote(request.url)]
    for name, value in request.headers:
        item, exact = _header_item(name, value)
        if not exact:
            notes.append(
                f"HTTPie cannot send {name}'s value exactly: it reads \\ before {_shown()}."
            )
        lines.append([shell.quote(item)])
    lines += [[f"'{name}:'"] for name in _OWN if not request.has(name)]
    if body and not request.has("Content-Type"):
        lines.append(["'Content-Type:'"])  # else application/json
    if shell.ansi_quoted(lines):
        notes.append(shell.BASH_NOTE)
    return Snippet("httpie", shell.command(lines, before=before, after=after), notes)


def _header_item(name: str, value: str) -> tuple[str, bool]:
    """Spell a header as an HTTPie item; False when HTTPie would change the value."""
    if not value:
        return f"{name};", True  # "Name:" would remove the header
    # Only the value's first character can join the ":" into another separator (":=", ":@").
    escaped = "\\" + value if value[0] in "=@" else value
    # HTTPie reads "\" before a separator as an escape; any other "\" stays as it is.
    exact = not any(a == "\\" and b in _SEPARATORS for a, b in zip(value, value[1:], strict=False))
    return f"{name}:{escaped}", exact


def _shown() -> str:
    return " ".join(sorted(_SEPARATORS))
