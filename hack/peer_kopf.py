"""The peer in `make bench`: the job of the benchmark's workload as a user would write it
with plain Kopf, without Kattle.

Each new Widget gets one call to a webhook and ends with `status.state: ready` and the value
the webhook returned. Run with `kopf run --standalone -n NAMESPACE hack/peer_kopf.py`,
`PEER_HANDLER_URL` naming the webhook. Kopf's defaults are kept except what any production
operator sets: Events are posted for warnings and errors only, and the HTTP session is one
for the process.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import aiohttp
import kopf

GROUP, VERSION, PLURAL = "peers.bench.kattle.dev", "v1", "widgets"

_session: list[aiohttp.ClientSession] = []


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.level = logging.WARNING
    _session.append(aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)))


@kopf.on.cleanup()
async def close(**_: Any) -> None:
    for session in _session:
        await session.close()


@kopf.on.create(GROUP, VERSION, PLURAL)
async def created(name: str, namespace: str | None, patch: kopf.Patch, **_: Any) -> None:
    url = os.environ["PEER_HANDLER_URL"]
    async with _session[0].post(url, json={"name": name, "namespace": namespace}) as response:
        response.raise_for_status()
        reply = await response.json()
    patch.status["state"] = "ready"
    patch.status["value"] = reply["value"]
