"""Describe a stored body for display: what kind it is, and its form fields. Pure, on demand.

Nothing here runs in the capture path; bodies are parsed only when someone opens a request.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import TypedDict
from urllib.parse import parse_qsl

from werkzeug.datastructures import MultiDict
from werkzeug.formparser import FormDataParser
from werkzeug.http import parse_options_header

# Display-time parsing limits; the raw body is always kept whole whatever these say.
MAX_FORM_PARTS = 100_000
MAX_FORM_FIELD_BYTES = 16 * 1024 * 1024

TEXT_TYPES = ("application/xml", "application/javascript", "application/x-ndjson", "image/svg+xml")
BINARY_PREFIXES = ("application/octet-stream", "image/", "audio/", "video/", "font/")


class BodyInfo(TypedDict):
    size: int
    sha256: str
    kind: str
    content_encoding: str | None
    charset: str | None


class FileInfo(TypedDict):
    field: str
    filename: str | None
    content_type: str | None
    size: int


def header(headers: list[list[str]], name: str) -> str | None:
    """Return the first value of a header, matched case-insensitively."""
    wanted = name.lower()
    return next((value for key, value in headers if key.lower() == wanted), None)


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _looks_like_json(body: bytes) -> bool:
    if body.lstrip()[:1] not in (b"{", b"["):
        return False
    try:
        json.loads(body)
    except (ValueError, RecursionError):
        return False
    return True


def kind_of(mimetype: str, encoding: str | None, body: bytes) -> str:
    """Classify a body as empty, json, form, multipart, text or binary."""
    if not body:
        return "empty"
    if encoding and encoding.lower() != "identity":
        return "binary"
    if mimetype == "application/json" or mimetype.endswith("+json"):
        return "json"
    if mimetype == "application/x-www-form-urlencoded":
        return "form"
    if mimetype == "multipart/form-data":
        return "multipart"
    if mimetype in TEXT_TYPES or mimetype.startswith("text/"):
        return "text" if _is_utf8(body) else "binary"
    if mimetype.startswith(BINARY_PREFIXES) or b"\x00" in body or not _is_utf8(body):
        return "binary"
    if not mimetype and _looks_like_json(body):
        return "json"
    return "text"


def describe(content_type: str | None, headers: list[list[str]], body: bytes) -> BodyInfo:
    """Summarise a body for the detail view."""
    mimetype, options = parse_options_header(content_type or "")
    encoding = header(headers, "Content-Encoding")
    return {
        "size": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
        "kind": kind_of(mimetype.lower(), encoding, body),
        "content_encoding": encoding,
        "charset": options.get("charset"),
    }


def form_of(
    content_type: str | None, body: bytes
) -> tuple[list[list[str]] | None, list[FileInfo] | None]:
    """Parse url-encoded or multipart fields for display; ``(None, None)`` when not a form."""
    mimetype, options = parse_options_header(content_type or "")
    mimetype = mimetype.lower()
    if mimetype == "application/x-www-form-urlencoded":
        text = body.decode(options.get("charset") or "utf-8", errors="replace")
        # Display only: past MAX_FORM_PARTS fields the rest are left out (the raw body has them).
        fields = text.split("&", MAX_FORM_PARTS)[:MAX_FORM_PARTS]
        pairs = parse_qsl("&".join(fields), keep_blank_values=True)
        return [[k, v] for k, v in pairs], None
    if mimetype != "multipart/form-data":
        return None, None
    parser = FormDataParser(
        max_form_memory_size=MAX_FORM_FIELD_BYTES, max_form_parts=MAX_FORM_PARTS
    )
    _stream, fields, files = parser.parse(io.BytesIO(body), mimetype, len(body), options)
    infos: list[FileInfo] = []
    for name, storage in files.items(multi=True):
        try:
            size = len(storage.stream.read())
        finally:
            storage.close()
        infos.append(
            {
                "field": name,
                "filename": storage.filename,
                "content_type": storage.content_type,
                "size": size,
            }
        )
    return _pairs(fields), infos


def _pairs(fields: MultiDict) -> list[list[str]]:
    return [[k, v] for k, v in fields.items(multi=True)]
