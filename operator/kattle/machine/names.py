"""Names the operator gives the ProcessInstances it creates.

They are derived from what caused the run (the object's uid for create and delete triggers,
the parent run's uid for chain and onError), so creating one twice after a crash finds the
first instead of starting a second run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

MAX_NAME = 253


def run_name(object_name: str, process: str, seed: str) -> str:
    """e.g. `web-1.start-3f2a9c1b`: readable in `kubectl get pi`, unique per cause."""
    digest = hashlib.sha256(f"{seed}/{process}".encode()).hexdigest()[:8]
    verb = process.partition(".")[2]
    suffix = f".{verb}-{digest}"
    return object_name[: MAX_NAME - len(suffix)].rstrip(".-") + suffix


def idempotency_key(run_uid: str, step: int, handler: str) -> str:
    """The same for every attempt of one handler step of one run, across restarts."""
    return f"{run_uid}/{step}/{handler}"


def owner_reference(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Ended runs are owned by their object, so they go when it goes (and never block it)."""
    meta = obj["metadata"]
    return owner_reference_to(obj["apiVersion"], obj["kind"], meta["name"], meta["uid"])


def owner_reference_to(api_version: str, kind: str, name: str, uid: str) -> dict[str, Any]:
    """The same, for an object known by its coordinates only (it may be gone)."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": False,
        "blockOwnerDeletion": False,
    }
