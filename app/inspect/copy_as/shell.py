"""Quote text for a POSIX shell so that it survives whatever bytes it holds."""

from __future__ import annotations

import base64
import shlex

# Printable text goes in plain single quotes; anything else (control characters, bidi marks
# that would make the command read differently on screen) in bash/zsh's $'...' with escapes.
_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def quote(text: str, *, newlines: bool = True) -> str:
    """Quote one word; with ``newlines`` a multi-line text stays readable in single quotes."""
    if all(c.isprintable() or (newlines and c == "\n") for c in text):
        return shlex.quote(text)
    return "$'" + "".join(_escape(c) for c in text) + "'"


def _escape(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    if char.isprintable() and char.isascii():
        return char
    # Bytes, never \u: bash turns \u into the locale's charset, or leaves it as it is.
    return "".join(f"\\x{b:02x}" for b in char.encode("utf-8"))


BASH_NOTE = "Control characters are quoted as $'...', which bash and zsh read (not sh)."


def ansi_quoted(lines: list[list[str]]) -> bool:
    """Tell whether any word needs bash's $'...' quoting."""
    return any(word.startswith("$'") for words in lines for word in words)


def command(lines: list[list[str]], *, before: str = "", after: str = "") -> str:
    """Join quoted words into one command, a line for each group of words."""
    return (
        before
        + " \\\n  ".join(" ".join(words) for words in lines if words)
        + (f" {after}" if after else "")
    )


def decoded_base64(data: bytes) -> str:
    """Return a pipeline start that writes ``data`` to stdin, for bodies no argument can hold."""
    return f"printf %s {base64.b64encode(data).decode()} | base64 --decode | "
