"""Reads signing keys from Secrets, caching them briefly.

A short cache keeps a busy handler from costing a Secret read per call, while a rotated
key is picked up within a minute without a restart. Key values are never logged.
"""

from __future__ import annotations

import base64
import time

from kattle.api.processhandler import SecretKeyReference
from kattle.kube.client import SECRETS, ApiError, KubeClient

CACHE_SECONDS = 30.0


class SecretUnavailableError(Exception):
    """The Secret or its key is missing or unreadable; the message says which."""


class SecretCache:
    def __init__(self, kube: KubeClient | None) -> None:
        self.kube = kube
        self._cache: dict[tuple[str, str], tuple[float, dict[str, str]]] = {}

    async def key(self, ref: SecretKeyReference) -> bytes:
        where = f"Secret {ref.namespace}/{ref.name}"
        if self.kube is None:
            raise SecretUnavailableError(f"cannot read {where}: no API client")
        cached = self._cache.get((ref.namespace, ref.name))
        if cached is None or time.monotonic() - cached[0] > CACHE_SECONDS:
            try:
                secret = await self.kube.get(SECRETS, ref.name, ref.namespace)
            except ApiError as error:
                reason = "does not exist" if error.not_found else f"cannot be read ({error})"
                raise SecretUnavailableError(f"{where} {reason}") from None
            cached = (time.monotonic(), dict(secret.get("data") or {}))
            self._cache[(ref.namespace, ref.name)] = cached
        value = cached[1].get(ref.key)
        if not value:
            raise SecretUnavailableError(f"{where} has no key {ref.key!r}")
        return base64.b64decode(value)
