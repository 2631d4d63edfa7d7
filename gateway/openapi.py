"""Keeping the OpenAPI schema truthful for routes that validate bodies themselves.

The chat and messages routes read and validate their bodies by hand (strict JSON, our error
shapes, size limits), so FastAPI cannot infer the schema; these helpers put the pydantic
models' JSON Schema into the document instead. Anthropic's models are filed under an
`Anthropic` prefix, since both APIs have a `Message` and a `Tool`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from shared.anthropic_api.request import CountTokensRequest, MessagesRequest
from shared.chat.request import ChatCompletionRequest

_REF = "#/components/schemas/{model}"
_ANTHROPIC_REF = "#/components/schemas/Anthropic{model}"
_DOCUMENTED: tuple[tuple[type[BaseModel], str], ...] = (
    (ChatCompletionRequest, _REF), (MessagesRequest, _ANTHROPIC_REF), (CountTokensRequest, _ANTHROPIC_REF))


def _body(ref: str) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": ref}}}}}


def chat_request_body() -> dict[str, Any]:
    return _body(_REF.format(model="ChatCompletionRequest"))


def messages_request_body() -> dict[str, Any]:
    return _body(_ANTHROPIC_REF.format(model="MessagesRequest"))


def count_tokens_request_body() -> dict[str, Any]:
    return _body(_ANTHROPIC_REF.format(model="CountTokensRequest"))


def install_openapi(app: FastAPI) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(title=app.title, version=app.version, routes=app.routes, description=app.description)
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        for model, ref in _DOCUMENTED:
            full = model.model_json_schema(ref_template=ref)
            prefix = ref.removeprefix(_REF.removesuffix("{model}")).removesuffix("{model}")
            for name, sub in full.pop("$defs", {}).items():
                schemas[prefix + name] = sub
            schemas[prefix + model.__name__] = full
        app.openapi_schema = doc
        return doc

    app.openapi = build  # type: ignore[method-assign]
