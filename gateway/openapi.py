"""Keeping the OpenAPI schema truthful for routes that validate bodies themselves.

The chat route reads and validates its body by hand (strict JSON, our error envelope,
size limits), so FastAPI cannot infer the schema; these helpers put the pydantic
models' JSON Schema into the document instead.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from shared.chat.request import ChatCompletionRequest

_REF = "#/components/schemas/{model}"


def chat_request_body() -> dict[str, Any]:
    schema = ChatCompletionRequest.model_json_schema(ref_template=_REF)
    schema.pop("$defs", None)
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": _REF.format(model="ChatCompletionRequest")}}},
        }
    }


def install_openapi(app: FastAPI) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(title=app.title, version=app.version, routes=app.routes, description=app.description)
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        full = ChatCompletionRequest.model_json_schema(ref_template=_REF)
        for name, sub in full.pop("$defs", {}).items():
            schemas[name] = sub
        schemas["ChatCompletionRequest"] = full
        app.openapi_schema = doc
        return doc

    app.openapi = build  # type: ignore[method-assign]
