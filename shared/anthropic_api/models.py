"""Which catalog model a Messages request's `model` names. Our slugs and `ainfera-auto` are taken
as they are; Anthropic's own model ids (`claude-sonnet-4-5`, or dated, `claude-sonnet-4-5-20250929`),
which Anthropic clients send by default, name the catalog row that sends that id to Anthropic."""

from __future__ import annotations

import re

from shared.catalog.types import Catalog, WireFormat

_DATED = re.compile(r"^(.+)-\d{8}$")


def catalog_slug(catalog: Catalog, name: str) -> str:
    """The slug `name` stands for; `name` itself when nothing matches (the check that follows
    answers an unknown model with a 404)."""
    if name in catalog.models:
        return name
    dated = _DATED.match(name)
    wanted = {name, dated.group(1)} if dated else {name}
    for model in catalog.models.values():
        provider = catalog.providers.get(model.provider)
        if (provider is not None and provider.wire_format is WireFormat.ANTHROPIC_MESSAGES
                and model.provider_model_name in wanted):
            return model.slug
    return name
