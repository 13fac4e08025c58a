"""The newest body seen of each orchestrated object: from watch events and our own writes.

A run starts from here instead of reading the object again: the admission write is a
compare-and-set on resourceVersion, so a stale body costs one lost race and a fresh read,
never a wrong decision. Anything but an admission (wait, cancel, object gone) is confirmed
against the API server before it is acted on.
"""

from __future__ import annotations

import json
from typing import Any

from kattle.kube.client import Kind

Key = tuple[str, str, str, str]  # group, plural, namespace ("" when cluster-scoped), name


def _key(kind: Kind, name: str, namespace: str | None) -> Key:
    return kind.group, kind.plural, namespace or "", name


def _version(body: dict[str, Any]) -> int | None:
    # resourceVersions are opaque by contract; etcd's are integers. Used only to keep the
    # newer of two bodies, so a wrong guess costs a fresh read, nothing more.
    try:
        return int(body["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return None


def slim(body: dict[str, Any]) -> dict[str, Any]:
    """The body without `managedFields`: server-side apply's bookkeeping is often most of an
    object's size, and nothing here reads it. Thousands of cached objects add up."""
    meta = body.get("metadata") or {}
    if "managedFields" not in meta:
        return body
    return {**body, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


def packed(body: dict[str, Any]) -> bytes:
    """A body as compact JSON: a fifth of the memory of the dicts it is parsed into, which
    counts at 100,000 cached objects; it is parsed again only when a run starts from it."""
    return json.dumps(slim(body), separators=(",", ":")).encode()


def unpacked(data: bytes) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(data)
    return body


class ObjectCache:
    def __init__(self) -> None:
        # key -> (resourceVersion as a number when it is one, the packed body)
        self._bodies: dict[Key, tuple[int | None, bytes]] = {}

    def get(self, kind: Kind, name: str, namespace: str | None) -> dict[str, Any] | None:
        known = self._bodies.get(_key(kind, name, namespace))
        return None if known is None else unpacked(known[1])

    def put(self, kind: Kind, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        key = _key(kind, meta["name"], meta.get("namespace"))
        new = _version(body)
        known = self._bodies.get(key)
        # The same version again (the watch's echo of our own write) is not packed twice.
        if known is not None and known[0] is not None and new is not None and new <= known[0]:
            return
        self._bodies[key] = (new, packed(body))

    def drop(self, kind: Kind, name: str, namespace: str | None) -> None:
        self._bodies.pop(_key(kind, name, namespace), None)

    def __len__(self) -> int:
        return len(self._bodies)
