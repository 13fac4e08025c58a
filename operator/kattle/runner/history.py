"""Which ended runs of an object to prune: beyond its type's history limit, oldest first.

Ended runs are owned by their object, so they go when it goes; while it lives, the newest
`historyLimit` ended runs are kept as its process log (Events expire within hours; these do
not). Unfinished runs are never pruned. The scheduler feeds this from the watch on runs, so
pruning needs no list request. Pure data in, names out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kattle.machine.times import parse_time

TYPE_LABEL = "kattle.dev/type"
RESOURCE_LABEL = "kattle.dev/resource"


def run_labels(type_name: str, resource: str) -> dict[str, str]:
    """The labels every run carries: its object's runs are one label selector away."""
    return {TYPE_LABEL: type_name, RESOURCE_LABEL: resource}


SortKey = tuple[datetime, datetime, str]  # end time, creation time, name
_NEVER = datetime.min.replace(tzinfo=UTC)


def age_key(run: dict[str, Any]) -> SortKey:
    """Older runs sort first: by end time, then creation, then name."""
    return (
        parse_time((run.get("status") or {}).get("endTime")) or _NEVER,
        parse_time(run["metadata"].get("creationTimestamp")) or _NEVER,
        run["metadata"]["name"],
    )


class History:
    """The ended runs of each object, as the watch reports them."""

    def __init__(self) -> None:
        self._ended: dict[Any, dict[str, SortKey]] = {}

    def ended(self, key: Any, run: dict[str, Any]) -> None:
        self._ended.setdefault(key, {})[run["metadata"]["name"]] = age_key(run)

    def has(self, key: Any, name: str) -> bool:
        return name in self._ended.get(key, {})

    def forget(self, key: Any, name: str) -> None:
        runs = self._ended.get(key)
        if runs is not None:
            runs.pop(name, None)
            if not runs:
                del self._ended[key]

    def beyond(self, key: Any, limit: int) -> list[str]:
        """The names past the newest `limit` ended runs, oldest first."""
        runs = self._ended.get(key) or {}
        if len(runs) <= limit:
            return []
        ordered = sorted(runs, key=lambda name: runs[name])
        return ordered[: len(runs) - limit]
