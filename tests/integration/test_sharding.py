"""Scaling out: several operators, each serving its own namespaces, share one cluster.

Two operators of their own serve `kattle-shard-a` and `kattle-shard-b`; runs in each
namespace are driven by its operator only, and all of them finish.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.handlers import HandlerServer
from tests.support.kube import Kubectl
from tests.support.operator import OperatorProcess
from tests.support.world import World, world_in

SHARDS = ("kattle-shard-a", "kattle-shard-b")


@pytest.fixture
def shard_worlds(api_client: Any, operator: Any, kubectl: Kubectl) -> Iterator[list[World]]:
    with (
        world_in(api_client, kubectl, SHARDS[0]) as a,
        world_in(api_client, kubectl, SHARDS[1]) as b,
    ):
        # One type for both shards: the second world uses the first one's definitions.
        b.type, b.kind, b.plural = a.type, a.kind, a.plural
        yield [a, b]


def _runs_in_log(log: Path) -> set[str]:
    found = set()
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            run = json.loads(line).get("kattle", {}).get("run")
            if run:
                found.add(run)
    return found


def test_each_operator_drives_the_runs_of_its_own_namespaces(
    shard_worlds: list[World], handler_server: HandlerServer, kubeconfig: Path, tmp_path: Path
) -> None:
    a, b = shard_worlds
    a.define_type()
    go = a.process("go", ["requested", "gone"], "going", "gone")
    a.handler("go", [go], handler_server.url(f"/{a.type}/go"))
    operators = [
        OperatorProcess(
            kubeconfig,
            tmp_path / f"{namespace}.log",
            f"--namespace={namespace}",
            "--log-format=json",
        ).start()
        for namespace in SHARDS
    ]
    try:
        a.wait_plan(go, 1)
        runs: dict[str, list[str]] = {}
        for world in (a, b):
            for obj in ("x", "y"):
                world.create(obj)
                world.wait_state(obj, "requested")
            runs[world.namespace] = [world.run(go, obj) for obj in ("x", "y", "x")]
        for world in (a, b):
            for run in runs[world.namespace]:
                status = world.wait_run(run)
                seen = {obj: world.status(obj) for obj in ("x", "y")}
                seen["runs of x"] = [r.get("status") for r in world.runs("x")]
                assert status["phase"] == "Succeeded", (run, status, seen)
    finally:
        for operator in operators:
            operator.stop()
    for namespace, operator in zip(SHARDS, operators, strict=True):
        driven = _runs_in_log(operator.log)
        assert {f"{namespace}/{run}" for run in runs[namespace]} <= driven
        assert all(run.startswith(f"{namespace}/") for run in driven), driven
