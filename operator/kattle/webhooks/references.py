"""Reads keys of Secrets and ConfigMaps that handlers refer to, caching them briefly.

Signing keys, bearer tokens and CA certificates live in Secrets and ConfigMaps so they can
be rotated without touching the ProcessHandler. A short cache keeps a busy handler from
costing an API read per call, and a rotated value is picked up within `CACHE_SECONDS`, or
at once when a caller knows its copy is stale (`fresh=True`, e.g. after a TLS failure).
Values are never logged.
"""

from __future__ import annotations

import base64
import time
from typing import Literal

from kattle.kube.client import CONFIGMAPS, SECRETS, ApiError, KubeClient

CACHE_SECONDS = 30.0

ObjectKind = Literal["ConfigMap", "Secret"]


class ReferenceUnavailableError(Exception):
    """The object or its key is missing or unreadable; the message says which."""


class ReferenceReader:
    def __init__(self, kube: KubeClient | None) -> None:
        self.kube = kube
        self._cache: dict[tuple[ObjectKind, str, str], tuple[float, dict[str, bytes]]] = {}

    async def value(
        self, kind: ObjectKind, namespace: str, name: str, key: str, *, fresh: bool = False
    ) -> bytes:
        where = f"{kind} {namespace}/{name}"
        if self.kube is None:
            raise ReferenceUnavailableError(f"cannot read {where}: no API client")
        cached = self._cache.get((kind, namespace, name))
        if fresh or cached is None or time.monotonic() - cached[0] > CACHE_SECONDS:
            cached = (time.monotonic(), await self._read(kind, namespace, name, where))
            self._cache[(kind, namespace, name)] = cached
        value = cached[1].get(key)
        if not value:
            raise ReferenceUnavailableError(f"{where} has no key {key!r}")
        return value

    async def _read(
        self, kind: ObjectKind, namespace: str, name: str, where: str
    ) -> dict[str, bytes]:
        assert self.kube is not None
        try:
            body = await self.kube.get(SECRETS if kind == "Secret" else CONFIGMAPS, name, namespace)
        except ApiError as error:
            reason = "does not exist" if error.not_found else f"cannot be read ({error})"
            raise ReferenceUnavailableError(f"{where} {reason}") from None
        if kind == "Secret":
            return {k: base64.b64decode(v) for k, v in (body.get("data") or {}).items()}
        # A ConfigMap holds text in `data` and bytes, base64-encoded, in `binaryData`.
        values = {k: base64.b64decode(v) for k, v in (body.get("binaryData") or {}).items()}
        values.update({k: v.encode() for k, v in (body.get("data") or {}).items()})
        return values
