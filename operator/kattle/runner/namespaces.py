"""The labels of namespaces, for handlers with a `namespaceSelector`: read when a run needs
them and kept for a few seconds, so a burst of runs in one namespace reads it once."""

from __future__ import annotations

import time

from kattle.kube.client import Kind, KubeClient

NAMESPACES = Kind("", "v1", "namespaces", namespaced=False)
# A namespace relabelled applies to runs that start this long after, at the latest.
TTL_SECONDS = 10.0


class NamespaceLabels:
    def __init__(self) -> None:
        self._known: dict[str, tuple[float, dict[str, str]]] = {}

    async def labels(self, kube: KubeClient, name: str) -> dict[str, str]:
        now = time.monotonic()
        known = self._known.get(name)
        if known is not None and now - known[0] < TTL_SECONDS:
            return known[1]
        body = await kube.get(NAMESPACES, name, missing_ok=True)
        labels: dict[str, str] = ((body or {}).get("metadata") or {}).get("labels") or {}
        self._known[name] = (now, labels)
        return labels
