"""The ProcessInstances the operator creates itself: labelled; owned by their object from
the run's last write (`machine.records.adoption`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kattle.runner.history import run_labels

# What a run's idempotency keys and the names of its children derive from, when it is not
# its uid: a run that starts without a record (`record: OnFailure`) has no uid until it
# needs one, and its keys must not change when it gets one, nor across a restart.
RUN_SEED_ANNOTATION = "kattle.dev/run-seed"


def run_manifest(
    *,
    name: str,
    namespace: str,
    process: str,
    obj: Mapping[str, Any],
    trigger: str,
    data: Mapping[str, Any] | None = None,
    parent: str | None = None,
    labels: Mapping[str, str] | None = None,
    ancestry: list[dict[str, str]] | None = None,
    seed: str | None = None,
) -> dict[str, Any]:
    """A ProcessInstance the operator creates, labelled; no owner until its run ends."""
    meta = obj["metadata"]
    spec: dict[str, Any] = {
        "process": process,
        "resource": {"name": meta["name"], "uid": meta["uid"]},
        "trigger": trigger,
    }
    if data:
        spec["data"] = dict(data)
    if parent:
        spec["parent"] = parent
    if ancestry:
        spec["ancestry"] = ancestry
    return {
        "apiVersion": "kattle.dev/v1alpha1",
        "kind": "ProcessInstance",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {**run_labels(process.partition(".")[0], meta["name"]), **(labels or {})},
            **({"annotations": {RUN_SEED_ANNOTATION: seed}} if seed else {}),
        },
        "spec": spec,
    }
