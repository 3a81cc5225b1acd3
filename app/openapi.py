"""The JSON API described in OpenAPI 3.1, built per request so it names this server and its limits.

``GET /api/v1/openapi.json`` serves it; ``GET /api/docs`` renders the same data as a page.
"""

from __future__ import annotations

import json
from typing import Any

from flask import current_app, render_template

from . import bins
from .links import base_url

Schema = dict[str, Any]
JSON = "application/json"


def ref(name: str, kind: str = "schemas") -> Schema:
    return {"$ref": f"#/components/{kind}/{name}"}


def obj(description: str, **properties: Schema) -> Schema:
    """A closed JSON object whose every property is always present."""
    return {
        "type": "object",
        "description": description,
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def text(description: str, **rules: Any) -> Schema:
    return {"type": "string", "description": description, **rules}


def whole(description: str, minimum: int = 0, **rules: Any) -> Schema:
    return {"type": "integer", "minimum": minimum, "description": description, **rules}


def maybe(schema: Schema) -> Schema:
    return {**schema, "type": [schema["type"], "null"]}


BOOL: Schema = {"type": "boolean"}
TIME = text("UTC, ISO 8601 with microseconds and Z", format="date-time")
PAIRS: Schema = {
    "type": "array",
    "description": "[name, value] pairs in the order they arrived",
    "items": {"type": "array", "prefixItems": [{"type": "string"}] * 2, "minItems": 2, "maxItems": 2},
}
BIN = {
    "id": text("26 characters of base32, or an operator's fixed id", pattern=bins.ID_PATTERN.pattern),
    "name": text("", maxLength=bins.NAME_MAX),
    "description": text("", maxLength=bins.DESCRIPTION_MAX),
    "created_at": TIME,
    "last_seq": whole("the last sequence number handed out"),
    "request_count": whole("requests stored now"),
    "max_requests": whole("retention keeps this many, oldest unpinned dropped first", 1),
    "expires_at": maybe(TIME),
    "expires_after": maybe(whole("seconds of inactivity before the bin is deleted; null: never")),
    "ingest_auth": {"enum": ["basic", "bearer", None], "description": "capture protection"},
    "fixed": {**BOOL, "description": "declared by the operator; never expires"},
    "capture_url": text("send webhooks here", format="uri"),
    "url": text("the bin's page", format="uri"),
}
SUMMARY = {
    "bin": text("the bin's id"),
    "seq": whole("1, 2, 3... per bin", 1),
    "method": text("as sent, upper case for known methods"),
    "path": text("the path below the capture URL"),
    "query_string": text("raw, without '?'"),
    "content_type": maybe(text("")),
    "body_size": whole("bytes"),
    "remote_addr": maybe(text("")),
    "received_at": TIME,
    "status": whole("what the sender was answered: 200, or 401 when rejected", 100),
    "rejected": {**BOOL, "description": "refused by the bin's ingest protection"},
    "pinned": {**BOOL, "description": "kept by retention"},
}
CREDENTIAL = text("", minLength=1, maxLength=500)


def _schemas() -> dict[str, Schema]:
    config = current_app.config
    never = config["HOOKSCOPE_ALLOW_NEVER_EXPIRE"]
    expiry = whole("", 60, maximum=config["HOOKSCOPE_MAX_BIN_TTL_SECONDS"])
    return {
        "Bin": obj("A bin, as its key holder sees it", **BIN),
        "BinCreated": obj(
            "A Bin plus its read key: shown once, keep it",
            **BIN,
            read_key=text("send as Authorization: Bearer <read_key>"),
            share_url=text("opens the bin in a browser; the key rides in the #fragment", format="uri"),
        ),
        "BinList": obj("The bins this browser holds keys for, newest first", bins={
            "type": "array", "items": ref("Bin")}),
        "BinSettings": {
            "type": "object",
            "description": "Settings to set; each is optional, unknown fields are refused",
            "additionalProperties": False,
            "properties": {
                "name": text("", maxLength=bins.NAME_MAX),
                "description": text("", maxLength=bins.DESCRIPTION_MAX),
                "max_requests": whole(
                    "how many requests to keep", 1, maximum=config["HOOKSCOPE_MAX_REQUESTS_CEILING"]
                ),
                "expires_after": {
                    **(maybe(expiry) if never else expiry),
                    "description": "seconds of inactivity before deletion"
                    + ("; null: never" if never else " (null is not allowed on this server)"),
                },
                "ingest_auth": ref("IngestAuth"),
            },
        },
        "IngestAuth": {
            "description": "Who may send to the capture URL; null or none: anyone",
            "oneOf": [
                {"type": "null"},
                obj("no protection", type={"const": "none"}),
                obj("HTTP Basic", type={"const": "basic"},
                    username={**CREDENTIAL, "pattern": "^[^:]*$"}, password=CREDENTIAL),
                obj("HTTP Bearer", type={"const": "bearer"}, token=CREDENTIAL),
            ],
        },
        "Summary": obj("A captured request without headers or body", **SUMMARY),
        "Detail": obj(
            "A captured request in full, body described (fetch the bytes from raw_url)",
            **SUMMARY,
            url=text("the full URL as received"),
            http_version=text("like HTTP/1.1"),
            headers=PAIRS,
            query=PAIRS,
            body=ref("BodyInfo"),
            form=maybe({**PAIRS, "description": "url-encoded or multipart fields; null: no form"}),
            files={**maybe({"type": "array", "items": ref("FileInfo")}),
                   "description": "multipart files; null: not multipart"},
            raw_url=text("path of the exact body bytes"),
        ),
        "BodyInfo": obj(
            "What the body is",
            size=whole("bytes"),
            sha256=text("hex digest", pattern="^[0-9a-f]{64}$"),
            kind={"enum": ["empty", "json", "form", "multipart", "text", "binary"]},
            content_encoding=maybe(text("the Content-Encoding header, if any")),
            charset=maybe(text("from the Content-Type, if any")),
        ),
        "FileInfo": obj(
            "One uploaded file",
            field=text(""),
            filename=maybe(text("")),
            content_type=maybe(text("")),
            size=whole("bytes"),
        ),
        "Page": obj(
            "Summaries newest first",
            requests={"type": "array", "items": ref("Summary")},
            next_before=maybe(whole("pass as before for the next page; null: no more")),
        ),
        "Cleared": obj("How many requests went", deleted=whole("")),
        "Pin": obj("Pin or unpin", pinned=BOOL),
        "Error": obj(
            "Something to act on",
            error=text("machine code, like bin_not_found, bad_parameter, bad_json, bad_name"),
            message=text("for people: what was wrong and how to fix it"),
        ),
    }


def _param(name: str, where: str, description: str, schema: Schema, **more: Any) -> Schema:
    return {"name": name, "in": where, "description": description, "schema": schema,
            "required": where == "path", **more}


PARAMETERS = {
    "BinId": _param("bin_id", "path", "the bin", text("", pattern=f"^{bins.ID_PATTERN.pattern}$")),
    "Seq": _param("seq", "path", "the request's sequence number", whole("")),
    "Limit": _param("limit", "query", "page size", whole("", 1, maximum=bins.PAGE_LIMIT_MAX,
                                                            default=bins.PAGE_LIMIT_DEFAULT)),
    "Before": _param("before", "query", "only requests with a smaller seq", whole("")),
    "Method": _param("method", "query", "only this HTTP method (any case)", text("")),
    "Since": _param("since", "query", "received at or after; needs a zone",
                    text("", format="date-time")),
    "Until": _param("until", "query", "received before; needs a zone", text("", format="date-time")),
    "IncludePinned": _param("include_pinned", "query", "delete pinned requests too",
                            {**BOOL, "default": False}),
}


def _answer(description: str, schema: str | None = None, **headers: Schema) -> Schema:
    answer: Schema = {"description": description}
    if schema:
        answer["content"] = {JSON: {"schema": ref(schema)}}
    if headers:
        answer["headers"] = headers
    return answer


RESPONSES = {
    "NotFound": _answer("No such bin (or request), or the read key does not open it", "Error"),
    "BadRequest": _answer("The request was refused; the message says why", "Error"),
    "TooLarge": _answer("The JSON body is over 1 MiB", "Error"),
    "NoContent": _answer("Done"),
}
NOT_FOUND = {"404": ref("NotFound", "responses")}
BAD = {"400": ref("BadRequest", "responses"), "413": ref("TooLarge", "responses")}
COOKIE = {"Set-Cookie": {"description": "the browser session that remembers read keys",
                         "schema": {"type": "string"}}}


def op(op_id: str, summary: str, responses: dict[str, Schema], *params: str,
       body: str | None = None, tag: str = "bins", **more: Any) -> Schema:
    """One operation; the path parameters and the security come from where it is used."""
    operation = {"operationId": op_id, "summary": summary, "tags": [tag], **more,
                 "parameters": [ref(p, "parameters") for p in params], "responses": responses}
    if body:
        operation["requestBody"] = {"required": body == "Pin",
                                    "content": {JSON: {"schema": ref(body)}}}
    return operation
