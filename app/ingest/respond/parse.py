"""Check one response object of the API's settings; every refusal names its field and limit.

A response is ``{"status": 201, "headers": [["X-Hook", "ok"]], "body": "created",
"content_type": "text/plain", "delay_ms": 0, "failure": null}``, each key optional; the body is
``body`` (text, maybe a template) or ``body_base64`` (bytes). ``failure`` is ``{"first": 3}`` or
``{"percent": 25}``, optionally ``"per_header": "X-Delivery-Id"`` (count per value of that header;
with ``first`` only), then ``"status": 503`` or ``"timeout": true`` (hold for ``delay_ms``, 30 s
unless given, then close without answering), and ``"delay_ms"`` (how long the failure waits).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from typing import Any

from . import limits
from .headers import REFUSED_LIST, has_control, is_token, refusal
from .spec import DEFAULT_CONTENT_TYPE, Failure, Invalid, ResponseSpec
from .templates import TemplateInvalid, compile_template, is_template

_MEDIA_TYPE = re.compile(r"[\w!#$&^.+-]+/[\w!#$&^.+-]+(\s*;.*)?", re.ASCII)
# Text limits generous enough that an oversized body is refused as body_too_large, by its bytes.
_TEXT_LIMIT = 4 * limits.MAX_BODY_BYTES
_BASE64_LIMIT = 2 * limits.MAX_BODY_BYTES


def object_of(value: object, where: str, keys: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid("bad_settings", f"{where} must be an object", where)
    unknown = sorted(set(value) - keys)
    if unknown:
        known = ", ".join(sorted(keys))
        raise Invalid("unknown_field", f"{where} has no {unknown[0]!r}; it takes {known}", where)
    return value


def whole(value: object, where: str, low: int, high: int, code: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise Invalid(code, f"{where} must be a whole number from {low} to {high}", where)
    return value


def text_of(value: object, where: str, limit: int, code: str, minimum: int = 0) -> str:
    if isinstance(value, str) and minimum <= len(value) <= limit:
        try:
            value.encode("utf-8")  # JSON can carry a lone surrogate, which nothing can store
        except UnicodeEncodeError:
            pass
        else:
            return value
    raise Invalid(code, f"{where} must be text of {minimum} to {limit} characters", where)


def _template(written: str, where: str) -> None:
    if is_template(written):
        try:
            compile_template(written)
        except TemplateInvalid as err:
            raise Invalid("bad_template", f"{where}: {err}", where) from None


def _status(value: object, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 100 <= value < 200:
        raise Invalid(
            "bad_status",
            f"{where} cannot be {value}: a 1xx status is an interim response, which HTTP does "
            "not allow as the final answer (RFC 9110, 15.2); pick 200 to 599",
            where,
        )
    return whole(value, where, limits.MIN_STATUS, limits.MAX_STATUS, "bad_status")


def _header(pair: object, where: str) -> tuple[str, str]:
    if not (isinstance(pair, list) and len(pair) == 2):
        raise Invalid("bad_header", f'{where} must be a pair ["Name", "value"]', where)
    name = text_of(pair[0], where, limits.MAX_HEADER_NAME, "bad_header", minimum=1)
    if not is_token(name):
        raise Invalid("bad_header", f"{where}: {name!r} is not a header name", where)
    why = refusal(name)
    if why is not None:
        raise Invalid(
            "refused_header",
            f"{where}: {name} cannot be set: {why}. A response cannot set {REFUSED_LIST}",
            where,
        )
    value = text_of(pair[1], where, limits.MAX_HEADER_VALUE, "bad_header")
    if has_control(value):
        raise Invalid("bad_header", f"{where}: the value holds a line break or control", where)
    _template(value, where)
    return name, value


def _headers(value: object, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list):
        raise Invalid("bad_header", f'{where} must be a list of ["Name", "value"] pairs', where)
    if len(value) > limits.MAX_HEADERS:
        raise Invalid("too_many_headers", f"{where}: at most {limits.MAX_HEADERS}", where)
    return tuple(_header(pair, f"{where}[{i}]") for i, pair in enumerate(value))


def _body(obj: dict[str, Any], where: str) -> tuple[bytes, bool]:
    written, encoded = obj.get("body"), obj.get("body_base64")
    if written is not None and encoded is not None:
        raise Invalid("bad_body", f"{where}: give body or body_base64, not both", f"{where}.body")
    if encoded is not None:
        field, is_text = f"{where}.body_base64", False
        encoded = text_of(encoded, field, _BASE64_LIMIT, "bad_body")
        try:
            body = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):  # ValueError: characters outside ASCII
            raise Invalid("bad_body", f"{field} is not base64", field) from None
    else:
        body = text_of(written or "", f"{where}.body", _TEXT_LIMIT, "bad_body").encode()
        field, is_text = f"{where}.body", True
    if len(body) > limits.MAX_BODY_BYTES:
        raise Invalid("body_too_large", f"{field}: at most {limits.MAX_BODY_BYTES} bytes", field)
    if is_text:
        _template(body.decode(), field)
    return body, is_text


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _failure(value: object, where: str) -> Failure:
    keys = {"first", "percent", "per_header", "status", "timeout", "delay_ms"}
    obj = object_of(value, where, keys)
    if ("first" in obj) == ("percent" in obj):
        raise Invalid("bad_failure", f'{where} takes "first" (a count) or "percent"', where)
    first = percent = per_header = None
    if "first" in obj:
        first = whole(obj["first"], f"{where}.first", 1, limits.MAX_FAIL_FIRST, "bad_failure")
    else:
        percent = obj["percent"]
        if not is_number(percent) or not 0 <= percent <= 100:
            field = f"{where}.percent"
            raise Invalid("bad_failure", f"{field} must be a number from 0 to 100", field)
    if obj.get("per_header") is not None:
        field = f"{where}.per_header"
        per_header = text_of(obj["per_header"], field, limits.MAX_HEADER_NAME, "bad_failure", 1)
        if first is None or not is_token(per_header):
            message = f"{field} must name a header, and goes with first only"
            raise Invalid("bad_failure", message, field)
    timeout = obj.get("timeout", False)
    if not isinstance(timeout, bool) or (timeout and "status" in obj):
        field = f"{where}.timeout"
        raise Invalid("bad_failure", f'{where} takes "status" or "timeout": true', field)
    status = 503 if timeout else _status(obj.get("status", 503), f"{where}.status")
    delay = obj.get("delay_ms", limits.MAX_DELAY_MS if timeout else 0)
    delay = whole(delay, f"{where}.delay_ms", 0, limits.MAX_DELAY_MS, "bad_failure")
    return Failure(first, percent, per_header, status, timeout, delay)


def parse_response(value: object, where: str = "response") -> ResponseSpec:
    """Check one response object into a ResponseSpec."""
    keys = {"status", "headers", "body", "body_base64", "content_type", "delay_ms", "failure"}
    obj = object_of(value, where, keys)
    status = _status(obj.get("status", 200), f"{where}.status")
    body, is_text = _body(obj, where)
    if status in (204, 304) and body:
        field = f"{where}.body"
        raise Invalid("bad_body", f"{where}: a {status} answer has no body (RFC 9110)", field)
    content_type = obj.get("content_type") or DEFAULT_CONTENT_TYPE
    field = f"{where}.content_type"
    content_type = text_of(content_type, field, limits.MAX_CONTENT_TYPE, "bad_content_type")
    if not _MEDIA_TYPE.fullmatch(content_type) or has_control(content_type):
        raise Invalid("bad_content_type", f"{field} must be a media type such as text/plain", field)
    delay = whole(obj.get("delay_ms", 0), f"{where}.delay_ms", 0, limits.MAX_DELAY_MS, "bad_delay")
    failure = None if obj.get("failure") is None else _failure(obj["failure"], f"{where}.failure")
    return ResponseSpec(
        status=status,
        headers=_headers(obj.get("headers", []), f"{where}.headers"),
        body=body,
        body_is_text=is_text,
        content_type=content_type,
        delay_ms=delay,
        failure=failure,
    )
