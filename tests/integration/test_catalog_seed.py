"""Seeding: all 17 providers and 130 models; facts refresh, activation state is kept."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from shared.catalog.seed import load_seed, seed_catalog
from shared.db.catalog import load_catalog
from shared.db.pool import connect

pytestmark = pytest.mark.integration


async def test_seed_holds_every_researched_row(database_url):
    conn = await connect(database_url)
    try:
        catalog = await load_catalog(conn)
    finally:
        await conn.close()
    assert len(catalog.providers) == 17 and len(catalog.models) == 130
    m = catalog.models["llama-3.3-70b@fireworks"]
    assert m.upstream_model == "accounts/fireworks/models/llama-v3p3-70b-instruct"
    assert catalog.providers["groq"].fast_tier and catalog.providers["deepseek"].stack == "china"
    retired = {s for s, m in catalog.models.items() if not m.active}
    statuses = {m.slug: status for m, status in load_seed().models}
    assert retired == {s for s, st in statuses.items() if st == "likely_retired"}
    assert all(catalog.models[s].deactivation_reason == "catalog:likely_retired" for s in retired)


async def test_reseeding_refreshes_facts_but_keeps_activation_state(database_url):
    conn = await connect(database_url)
    try:
        await conn.execute("UPDATE models SET active = false, deactivation_reason = 'probe:timeout', "
                           "input_usd_per_mtok = 99 WHERE slug = 'gpt-4o@openai'")
        await seed_catalog(conn)
        row = await conn.fetchrow("SELECT active, deactivation_reason, input_usd_per_mtok::float8 AS p "
                                  "FROM models WHERE slug = 'gpt-4o@openai'")
        assert (row["active"], row["deactivation_reason"], row["p"]) == (False, "probe:timeout", 2.5)
        assert await conn.fetchval("SELECT count(*) FROM models") == 130
    finally:
        await conn.close()


async def test_reseeding_a_database_seeded_before_the_stack_rule_retags_its_providers(database_url):
    conn = await connect(database_url)
    try:
        await conn.execute("UPDATE providers SET stack = 'us' WHERE name = 'novita'")
        await conn.execute("UPDATE providers SET stack = 'sea', serving_region = NULL "
                           "WHERE name IN ('alibaba', 'byteplus')")
        await seed_catalog(conn)
        tags = {r["name"]: r["stack"] for r in await conn.fetch("SELECT name, stack FROM providers")}
        catalog = await load_catalog(conn)
    finally:
        await conn.close()
    assert (catalog.providers["alibaba"].serving_region or "").startswith("Singapore")
    assert {n for n, s in tags.items() if s == "china"} == {"deepseek", "moonshot", "alibaba", "novita", "byteplus"}
    assert {n for n, s in tags.items() if s == "sea"} == {"typhoon"}


async def test_catalog_changes_notify_listeners(database_url):
    got: list[str] = []
    listener = await asyncpg.connect(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        await listener.add_listener("ainfera_catalog", lambda *args: got.append(args[2]))
        await conn.execute("UPDATE providers SET active = false WHERE name = 'xai'")
        for _ in range(500):  # bounded: about 5 s
            if got:
                break
            await listener.execute("SELECT 1")
            await asyncio.sleep(0.01)
        assert got == ["ainfera_catalog"]
    finally:
        await conn.close()
        await listener.close()
