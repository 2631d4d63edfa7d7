"""The worker's ctx: the process's one Resources, shared by every queue's worker."""

from __future__ import annotations

from typing import Any

from shared.resources import Resources

RESOURCES = "resources"


def resources(ctx: dict[str, Any]) -> Resources:
    res: Resources = ctx[RESOURCES]
    return res
