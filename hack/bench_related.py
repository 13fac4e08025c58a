"""The related-runs part of `make bench`: parents that each run a process on 10 children.

Measured in the same sitting as the rest (hack/bench.py): first every child alone (one
plain manual run each, the baseline), then one manual run per parent, whose process runs
`relatedRuns` on its 10 children and waits for them. Reported: parent runs/s (and the child
runs/s inside them), the parent's latency from request to done, the writes of one parent run
with its children, and so the parent's own writes beyond its children's.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

CHILDREN = 10
PARENT, CHILD = "brelparent", "brelkid"
GROUP = "kattle.dev"


def definitions() -> list[dict[str, Any]]:
    def resource(name: str, **spec: Any) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "ResourceDefinition",
            "metadata": {"name": name},
            "spec": {
                "names": {"kind": name.capitalize(), "plural": f"{name}s"},
                "initialState": "ready",
                "historyLimit": 2,
                **spec,
            },
        }

    def poke(name: str, **spec: Any) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "ProcessDefinition",
            "metadata": {"name": f"{name}.poke"},
            "spec": {
                "resourceType": name,
                "start": ["ready"],
                "transitioning": "poking",
                "done": "ready",
                **spec,
            },
        }

    return [
        resource(CHILD),
        poke(CHILD),
        resource(PARENT, relations=[{"name": "kids", "type": CHILD}]),
        poke(PARENT, relatedRuns=[{"relation": "kids", "process": f"{CHILD}.poke"}]),
    ]


async def create_family(bench: Any, cluster: Any, parents: int) -> dict[str, dict[str, Any]]:
    """`parents` parents (o0, o1, ...) and 10 children each (o0, o1, ... of the child kind,
    child i owned by parent i // 10); waits until every child has its initial state."""
    made: dict[str, dict[str, Any]] = {PARENT: {}, CHILD: {}}

    async def create(type_name: str, name: str, owner: dict[str, Any] | None) -> None:
        meta: dict[str, Any] = {"name": name}
        if owner is not None:
            meta["ownerReferences"] = [bench.owner_reference(owner)]
        body = {
            "apiVersion": f"{bench.TYPE_GROUP}/v1",
            "kind": type_name.capitalize(),
            "metadata": meta,
        }
        kind = bench.object_kind(type_name)
        made[type_name][name] = await cluster.kube.create(kind, body, bench.NAMESPACE)

    await bench.bounded(64, [create(PARENT, f"o{p}", None) for p in range(parents)])
    kids = [
        create(CHILD, f"o{i}", made[PARENT][f"o{i // CHILDREN}"]) for i in range(parents * CHILDREN)
    ]
    await bench.bounded(64, kids)
    deadline = time.monotonic() + 120
    kind = bench.object_kind(CHILD)
    while True:
        listed = await cluster.kube.list(kind, bench.NAMESPACE)
        if all((o.get("status") or {}).get("state") == "ready" for o in listed):
            for obj in listed:
                made[CHILD][obj["metadata"]["name"]] = obj
            return made
        if time.monotonic() > deadline:
            raise TimeoutError("children did not get their initial state")
        await asyncio.sleep(0.5)


async def measure(
    bench: Any, cluster: Any, watcher: Any, meter: Any, parents: int
) -> dict[str, Any]:
    cluster.apply(definitions())
    cluster.wait_ready(PARENT)
    cluster.wait_ready(CHILD)
    objects = await create_family(bench, cluster, parents)
    alone = await bench.measure_batch(
        cluster, watcher, meter, CHILD, parents * CHILDREN, 64, objects, manual=True
    )
    with_children = await bench.measure_batch(
        cluster, watcher, meter, PARENT, parents, 64, objects, manual=True
    )
    child = alone.summary()
    parent = with_children.summary()
    return {
        "parents": parents,
        "children_each": CHILDREN,
        "child_run_alone": child,
        "parent_run_with_children": parent,
        "child_runs_per_second_inside_parents": round(with_children.runs_per_second * CHILDREN, 1),
        "parent_own_writes": round(
            parent["writes_per_run"] - CHILDREN * child["writes_per_run"], 2
        ),
    }


def report(related: dict[str, Any]) -> list[str]:
    child, parent = related["child_run_alone"], related["parent_run_with_children"]
    return [
        f"related runs: {related['parents']} parents x {related['children_each']} children",
        f"  a child run alone:         {child['runs_per_second']} runs/s, "
        f"{child['writes_per_run']} writes, p50 {child['latency_ms']['p50']} ms",
        f"  a parent with 10 children: {parent['runs_per_second']} parents/s "
        f"({related['child_runs_per_second_inside_parents']} child runs/s), "
        f"p50 {parent['latency_ms']['p50']} ms, p95 {parent['latency_ms']['p95']} ms, "
        f"{parent['writes_per_run']} writes with its children, "
        f"{related['parent_own_writes']} of its own, failed {parent['failed']}",
        "  requests per parent run: "
        + ", ".join(f"{k} {v}" for k, v in parent["requests_per_run"].items()),
    ]
