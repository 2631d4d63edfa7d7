"""The stack tags of the seeded catalog: one rule, a cited source for every provider, and the tags the
rule gives pinned, so that changing one is a deliberate, reviewed edit of the researched data."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.catalog.seed import CATALOG_FILE, load_seed
from shared.catalog.types import Catalog, Stack
from shared.errors import NoEligibleModel
from shared.routing.router import RouteRequest, route
from shared.routing.stacks import STACK_HINTS, allowed_stacks, stack_allows
from tests.fixtures import acceptance_catalog

CATALOG: dict[str, Any] = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
PROVIDERS = {p["name"]: p for p in CATALOG["providers"]}

# The rule applied on 2026-12-04 (shared/catalog/data/README.md, "Stack: one rule, with sources").
EXPECTED = {
    "openai": "us", "anthropic": "us", "google": "us", "xai": "us", "mistral": "eu",
    "deepseek": "china", "moonshot": "china", "alibaba": "china",
    "groq": "us", "cerebras": "us", "sambanova": "us", "fireworks": "us", "deepinfra": "us",
    "novita": "china", "together": "us", "typhoon": "sea", "byteplus": "china",
}


def test_the_catalog_states_its_rule() -> None:
    rule = CATALOG["stack_rule"]
    assert "jurisdiction that governs the company serving the request, parent company included" in rule
    assert "serving_region" in rule


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_every_provider_row_has_a_stack_source(name: str) -> None:
    p = PROVIDERS[name]
    assert p["stack"] in {s.value for s in Stack}
    assert p["stack_basis"].strip()
    assert "serving_region" in p and (p["serving_region"] is None or p["serving_region"].strip())
    assert p["stack_source"], name
    for key in p["stack_source"]:
        source = CATALOG["sources"][key]
        assert source["url"].startswith("https://"), key
        assert source["quote"].strip() and source["title"].strip(), key
        assert source["checked"] == "2026-12-04", key


def test_the_tags_are_the_ones_the_rule_gives() -> None:
    assert {name: p["stack"] for name, p in PROVIDERS.items()} == EXPECTED
    assert {p.name: p.stack.value for p in load_seed().providers} == EXPECTED


def test_serving_region_never_decides_the_stack() -> None:
    # Alibaba and BytePlus serve from Southeast Asia and are run from China; Novita states no region.
    assert "Singapore" in PROVIDERS["alibaba"]["serving_region"] and PROVIDERS["alibaba"]["stack"] == "china"
    assert "Malaysia" in PROVIDERS["byteplus"]["serving_region"] and PROVIDERS["byteplus"]["stack"] == "china"
    assert PROVIDERS["novita"]["serving_region"] is None
    assert {p.name: p.serving_region for p in load_seed().providers} == {
        n: p["serving_region"] for n, p in PROVIDERS.items()}


def test_hints_map_onto_stacks_the_same_way_everywhere() -> None:
    all_stacks = {s.value for s in Stack}
    assert allowed_stacks(None) == all_stacks
    assert allowed_stacks("avoid-china") == all_stacks - {"china"}
    for hint in STACK_HINTS:
        for stack in all_stacks:
            assert stack_allows(stack, hint) == (stack in allowed_stacks(hint))
    with pytest.raises(ValueError):
        allowed_stacks("mars")


def acceptance() -> Catalog:
    rows = load_seed()
    keep = set(acceptance_catalog.ROWS)
    return Catalog(providers={p.name: p for p in rows.providers if p.name in acceptance_catalog.PROVIDERS},
                   models={m.slug: m for m, _ in rows.models if m.slug in keep})


def test_the_acceptance_catalog_is_the_products_provider_set() -> None:
    cat = acceptance()
    assert len(cat.models) == len(acceptance_catalog.ROWS) == 54
    assert {m.provider for m in cat.models.values()} == set(acceptance_catalog.PROVIDERS)
    china = {p.name for p in cat.providers.values() if p.stack == Stack.CHINA}
    assert china == {acceptance_catalog.CHINA_STACK_PROVIDER}


@pytest.mark.parametrize("input_tokens", [1, 20, 2_000, 60_000])
def test_on_the_acceptance_catalog_stack_china_routes_novita_only(input_tokens: int) -> None:
    decision = route(RouteRequest(input_tokens=input_tokens, output_cap=None, stack="china"), acceptance())
    assert {c.provider.name for c in decision.ranked} == {"novita"}
    avoid = route(RouteRequest(input_tokens=input_tokens, output_cap=None, stack="avoid-china"), acceptance())
    assert "novita" not in {c.provider.name for c in avoid.ranked}


def test_stack_sea_on_the_seeded_catalog_is_typhoon_which_has_no_price() -> None:
    rows = load_seed()
    seeded = Catalog(providers={p.name: p for p in rows.providers}, models={m.slug: m for m, _ in rows.models})
    sea = [m for m in seeded.models.values() if seeded.provider_of(m).stack == Stack.SEA]
    assert {m.provider for m in sea} == {"typhoon"} and not any(m.priced for m in sea)
    with pytest.raises(NoEligibleModel, match="budget step"):
        route(RouteRequest(input_tokens=20, output_cap=None, stack="sea"), seeded)
