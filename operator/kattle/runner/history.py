"""Prunes an object's ended runs beyond its type's history limit, oldest first.

Runs are owned by their object, so they go when it goes; while it lives, the newest
`historyLimit` ended runs are kept as its process log (Events expire within hours; these do
not). Unfinished runs are never pruned.
"""

from __future__ import annotations

from typing import Any

from kattle.api.processinstance import FINAL_PHASES
from kattle.kube.client import KubeClient
from kattle.kube.kinds import PROCESS_INSTANCES

TYPE_LABEL = "kattle.dev/type"
RESOURCE_LABEL = "kattle.dev/resource"


def runs_to_prune(runs: list[dict[str, Any]], limit: int) -> list[str]:
    """Names of the ended runs past the newest `limit`, by end time then creation."""
    ended = [r for r in runs if (r.get("status") or {}).get("phase") in FINAL_PHASES]
    ended.sort(
        key=lambda r: (
            (r.get("status") or {}).get("endTime") or "",
            r["metadata"].get("creationTimestamp") or "",
            r["metadata"]["name"],
        ),
        reverse=True,
    )
    return [r["metadata"]["name"] for r in ended[limit:]]


async def prune(
    kube: KubeClient, *, namespace: str, type_name: str, object_name: str, limit: int
) -> list[str]:
    runs = await kube.list(
        PROCESS_INSTANCES,
        namespace,
        label_selector=f"{TYPE_LABEL}={type_name},{RESOURCE_LABEL}={object_name}",
    )
    doomed = runs_to_prune(runs, limit)
    for name in doomed:
        await kube.delete(PROCESS_INSTANCES, name, namespace)
    return doomed
