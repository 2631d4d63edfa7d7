"""The product's own incident, replayed: a 54-row catalog with 43 broken rows (wrong upstream names,
`/v1/v1` URLs, a provider whose custom chat path was lost). Fanout runs asked for from a terminal
with an empty environment switch the broken rows off with the right reasons; once the mappings are
fixed, a run switches them back on and `/v1/models` lists them again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from shared.simulator.knowledge import CATALOG_FILE
from tests.e2e.batch_helpers import Stack, running_stack

pytestmark = pytest.mark.e2e

CATALOG = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
PROVIDERS = {p["name"]: p for p in CATALOG["providers"]}
KEPT_PROVIDERS = ("groq", "deepinfra", "fireworks", "together")  # 52 rows
KEPT_OPENAI = ("gpt-4.1@openai", "gpt-4o-mini@openai")  # 54 in all
HEALTHY_TOGETHER = "llama-3.3-70b@together"


def kept_rows() -> list[dict]:
    return [m for m in CATALOG["models"] if m["provider"] in KEPT_PROVIDERS or m["slug"] in KEPT_OPENAI]


def break_the_catalog(stack: Stack) -> dict[str, str]:
    """The incident's state; returns the broken slugs and the reason a probe must give for each."""
    keep = [m["slug"] for m in kept_rows()]
    stack.db("DELETE FROM models WHERE NOT (slug = ANY($1::text[]))", keep)
    # DeepInfra's OpenAI-compatible surface lives under /v1/openai; the row lost that path.
    stack.db("UPDATE providers SET base_url = 'https://api.deepinfra.com', chat_completions_path = NULL "
             "WHERE name = 'deepinfra'")
    # Fireworks: the /v1 of the base URL repeated in the path.
    stack.db("UPDATE providers SET chat_completions_path = '/v1/chat/completions' WHERE name = 'fireworks'")
    # Together: our family names sent instead of Together's own model names.
    stack.db("UPDATE models SET provider_model_name = model_family WHERE provider = 'together' AND slug <> $1",
             HEALTHY_TOGETHER)
    broken = {}
    for m in kept_rows():
        if m["provider"] == "deepinfra":
            broken[m["slug"]] = "http_404_path"
        elif m["provider"] == "fireworks":
            broken[m["slug"]] = "invalid_upstream_url"
        elif m["provider"] == "together" and m["slug"] != HEALTHY_TOGETHER:
            broken[m["slug"]] = "model_not_found"
    return broken


def fix_the_mappings(stack: Stack) -> None:
    for name in ("deepinfra", "fireworks"):
        p = PROVIDERS[name]
        stack.db("UPDATE providers SET base_url = $2, chat_completions_path = $3 WHERE name = $1",
                 name, p["base_url"], p.get("chat_completions_path"))
    for m in kept_rows():
        if m["provider"] == "together":
            stack.db("UPDATE models SET provider_model_name = $2 WHERE slug = $1", m["slug"], m["provider_model_name"])


def fanout_from_an_empty_terminal(stack: Stack, cwd: Path) -> str:
    env = {"PATH": os.environ["PATH"], "AINFERA_DATABASE_URL": stack.database_url,
           "AINFERA_REDIS_URL": stack.env["AINFERA_REDIS_URL"]}
    out = subprocess.run([sys.executable, "-m", "shared.cli.main", "fanout", "run", "--wait"], env=env, cwd=cwd,
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr + out.stdout
    return out.stdout


def test_a_run_switches_broken_rows_off_and_fixed_ones_back_on(tmp_path):
    with running_stack(tmp_path) as stack:
        broken = break_the_catalog(stack)
        assert len(kept_rows()) == 54 and len(broken) == 43

        first = fanout_from_an_empty_terminal(stack, tmp_path)
        assert "passed 11, failed 43, skipped 0" in first and "WITHHELD" not in first
        second = fanout_from_an_empty_terminal(stack, tmp_path)  # the second failed run in a row
        assert "passed 11, failed 43, skipped 0" in second
        rows = {r["slug"]: r for r in stack.db("SELECT slug, active, deactivation_reason FROM models")}
        assert {s for s, r in rows.items() if not r["active"]} == set(broken)
        assert {s: rows[s]["deactivation_reason"] for s in broken} == {s: f"probe:{r}" for s, r in broken.items()}

        fix_the_mappings(stack)
        third = fanout_from_an_empty_terminal(stack, tmp_path)
        assert "passed 54, failed 0, skipped 0" in third
        rows = {r["slug"]: r for r in stack.db("SELECT slug, active FROM models")}
        switched_on = [s for s in broken if rows[s]["active"]]
        assert len(switched_on) >= 35

        _, auth = stack.new_tenant("reader")
        listed = httpx.get(f"{stack.base_url}/v1/models", headers=auth, timeout=30).json()["data"]
        assert len(listed) >= 40
        events = stack.db("SELECT event_type FROM audit_events WHERE tenant_id = "
                          "'00000000-0000-0000-0000-000000000000'")
        kinds = [e["event_type"] for e in events]
        assert kinds.count("model.deactivated") == 43 and kinds.count("model.activated") == len(switched_on)
