"""Kattle's finalizer, and the one way it is released (by the runner and the object
controller alike)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kattle.kube.client import Kind, KubeClient

FINALIZER = "kattle.dev/processes"
RELEASE_TRIES = 10


async def release(
    kube: KubeClient,
    kind: Kind,
    name: str,
    namespace: str | None,
    body: Mapping[str, Any] | None = None,
) -> None:
    """Removes the finalizer with a compare-and-set on the object's resourceVersion (other
    finalizers may change meanwhile), starting from `body` if given and reading afresh after
    a conflict. Done when the object is gone or carries the finalizer no more."""
    current = body
    for _ in range(RELEASE_TRIES):
        if current is None:
            current = await kube.get(kind, name, namespace, missing_ok=True)
            if current is None:
                return
        finalizers = current["metadata"].get("finalizers") or []
        if FINALIZER not in finalizers:
            return
        patch = {
            "metadata": {
                "resourceVersion": current["metadata"]["resourceVersion"],
                "finalizers": [f for f in finalizers if f != FINALIZER],
            }
        }
        released = await kube.patch(
            kind, name, patch, namespace=namespace, missing_ok=True, conflict_ok=True
        )
        if released is not None:
            return
        current = None  # gone, or changed since: look again
