"""The JSON API described in OpenAPI 3.1 (openapi.json beside this file), and its docs page.

The document is data; what depends on the server (its address, the operator's limits) is filled
in per request, so ``GET /api/v1/openapi.json`` describes exactly the server that answers it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, TypedDict

from flask import current_app, render_template

from app.web.links import base_url

Schema = dict[str, Any]
METHODS = ("get", "post", "put", "patch", "delete")
RULES = {
    "minimum": "at least {}",
    "maximum": "at most {}",
    "minLength": "at least {} characters",
    "maxLength": "at most {} characters",
    "pattern": "matches {}",
    "format": "{}",
    "default": "default {}",
}
QUOTED = ("default",)


@cache
def _document() -> Schema:
    return json.loads((Path(__file__).parent / "openapi.json").read_text(encoding="utf-8"))


def spec() -> Schema:
    """Return the OpenAPI document for this server: its base URL and its operator's limits."""
    document = copy.deepcopy(_document())
    document["servers"] = [{"url": base_url()}]
    config = current_app.config
    settings = document["components"]["schemas"]["BinSettings"]["properties"]
    settings["max_requests"]["maximum"] = config["HOOKSCOPE_MAX_REQUESTS_CEILING"]
    settings["max_bytes"]["maximum"] = config["HOOKSCOPE_BIN_MAX_BYTES"]
    settings["expires_after"]["maximum"] = config["HOOKSCOPE_MAX_BIN_TTL_SECONDS"]
    if config["HOOKSCOPE_ALLOW_NEVER_EXPIRE"]:
        settings["expires_after"]["type"] = ["integer", "null"]
    return document


def spec_json() -> str:
    """Return the document as JSON in its written order (jsonify would sort the keys)."""
    return json.dumps(spec(), indent=1)


# The docs page: the same document turned into rows a template can print without logic.


class Row(TypedDict):
    name: str
    type: str
    link: str | None
    required: bool
    rules: str
    description: str


def _name(ref: str) -> str:
    return ref.rsplit("/", 1)[1]


def _resolve(document: Schema, node: Schema) -> Schema:
    """Follow a ``$ref`` into the components, once."""
    if "$ref" not in node:
        return node
    _, _, kind, name = node["$ref"].split("/")
    return document["components"][kind][name]


def type_of(schema: Schema) -> str:
    """Say a schema's type the way a reader would: ``string or null``, ``array of Summary``."""
    if "$ref" in schema:
        return _name(schema["$ref"])
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return " | ".join(json.dumps(value) for value in schema["enum"])
    if "oneOf" in schema:
        return " | ".join(type_of(option) for option in schema["oneOf"])
    kinds = schema.get("type", "any")
    words = []
    for kind in [kinds] if isinstance(kinds, str) else kinds:
        if kind == "array" and "prefixItems" in schema.get("items", {}):
            words.append("array of [name, value]")
        elif kind == "array":
            words.append(f"array of {type_of(schema.get('items', {}))}")
        elif kind == "object" and schema.get("properties"):
            fields = ", ".join(f"{k}: {type_of(v)}" for k, v in schema["properties"].items())
            words.append(f"{{{fields}}}")
        else:
            words.append(kind)
    return " or ".join(words)


def _link(schema: Schema) -> str | None:
    """Name the component a schema (or the items of an array schema) refers to, if any."""
    target = schema.get("$ref") or schema.get("items", {}).get("$ref")
    return _name(target) if target else None


def _row(name: str, schema: Schema, required: bool) -> Row:
    rules = ", ".join(
        text.format(json.dumps(schema[key]) if key in QUOTED else schema[key])
        for key, text in RULES.items()
        if key in schema
    )
    return {
        "name": name,
        "type": type_of(schema),
        "link": _link(schema),
        "required": required,
        "rules": rules,
        "description": schema.get("description", ""),
    }


def fields(document: Schema, schema: Schema) -> list[Row]:
    """List an object schema's properties, or the schema itself when it has none."""
    schema = _resolve(document, schema)
    properties = schema.get("properties")
    if not properties:
        return [_row("", schema, False)]
    needed = set(schema.get("required", ()))
    return [_row(name, prop, name in needed) for name, prop in properties.items()]


def operations(document: Schema) -> Iterator[Schema]:
    """Yield each operation with its parameters, body fields and responses resolved for print."""
    for path, item in document["paths"].items():
        for method in (m for m in METHODS if m in item):
            op = item[method]
            params = [_resolve(document, p) for p in item.get("parameters", [])]
            params += [_resolve(document, p) for p in op.get("parameters", [])]
            body = op.get("requestBody")
            body_schema = next(iter(body["content"].values()), {}).get("schema") if body else None
            yield {
                "method": method.upper(),
                "path": path,
                "id": op["operationId"],
                "summary": op.get("summary", ""),
                "description": op.get("description", ""),
                "secured": op.get("security", document["security"]) != [],
                "tag": op.get("tags", [""])[0],
                "parameters": [
                    {
                        **_row(p["name"], p["schema"], p.get("required", False)),
                        "in": p["in"],
                        "description": p.get("description", ""),
                    }
                    for p in params
                ],
                "body": body
                and {
                    "required": body.get("required", False),
                    "media": ", ".join(body["content"]),
                    "schema": _link(body_schema) if body_schema else None,
                    "fields": fields(document, body_schema) if body_schema else [],
                },
                "responses": [
                    _response(document, status, answer)
                    for status, answer in op["responses"].items()
                ],
            }


def _response(document: Schema, status: str, answer: Schema) -> Schema:
    answer = _resolve(document, answer)
    media = answer.get("content", {})
    schemas = [entry["schema"] for entry in media.values() if "schema" in entry]
    return {
        "status": status,
        "description": answer["description"],
        "media": ", ".join(media),
        "link": _link(schemas[0]) if schemas else None,
        "type": type_of(schemas[0]) if schemas else "",
        "headers": [
            {**_row(name, h["schema"], h.get("required", False)), "description": h["description"]}
            for name, h in answer.get("headers", {}).items()
        ],
    }


def docs_page() -> str:
    """Render the API description as a page: server-side, no script, nothing from elsewhere."""
    document = spec()
    schemas = document["components"]["schemas"]
    return render_template(
        "api_docs.html",
        spec=document,
        operations=list(operations(document)),
        schemas=[
            {"name": name, "description": s.get("description", ""), "fields": fields(document, s)}
            for name, s in schemas.items()
        ],
        spec_url=f"{base_url()}/api/v1/openapi.json",
    )
