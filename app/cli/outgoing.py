"""Turn a capture into the request a relay sends: where, and with which headers. Pure.

Everything goes as it came (method, query, header order, duplicates, case, body bytes) except:

- the path below the bin is appended to the target's path, and the target's own query (if any)
  comes before the captured one;
- ``Host`` becomes the target's host and port, in place of the first ``Host`` (further ones
  are dropped), since the target routes by it (app/outbound/wire.py);
- ``Content-Length`` is written from the body (the same number: the body is stored whole), and
  a chunked capture is sent chunked, its body as one chunk (app/outbound/wire.py);
- the hop-by-hop fields, which describe the connection to Hookscope and not the request, are
  dropped (RFC 9110, 7.6.1): ``Connection`` and every field it names, ``Keep-Alive``,
  ``Proxy-Connection``, ``TE``, ``Trailer`` and ``Upgrade``. ``Upgrade`` would ask the target
  to switch protocols on a connection that is not the sender's.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"})
# Never dropped because Connection names them: the client sets them from the URL and the body.
_FRAMING = frozenset({"host", "content-length", "transfer-encoding"})


def target_url(target: str, path: str, query: str) -> str:
    """Append the path below the bin to the target's path; the target's query comes first."""
    parts = urlsplit(target)
    base = parts.path
    if path.startswith("/") and base.endswith("/"):
        base = base[:-1]
    full_path = (base + path) or "/"
    joined = "&".join(q for q in (parts.query, query) if q)
    return urlunsplit((parts.scheme, parts.netloc, full_path, joined, ""))


def relayed_headers(headers: Sequence[Sequence[str]]) -> list[list[str]]:
    """Drop the hop-by-hop fields and those the Connection header names; keep all else in order."""
    named = {
        token.strip().lower()
        for name, value in headers
        if name.lower() == "connection"
        for token in value.split(",")
    }
    dropped = HOP_BY_HOP | (named - _FRAMING)
    return [[name, value] for name, value in headers if name.lower() not in dropped]
