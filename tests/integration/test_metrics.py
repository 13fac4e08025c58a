"""The operator's /metrics, /healthz and /readyz, scraped while runs go through.

An operator of its own serves a namespace of its own with `--http-address` on loopback.
"""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.handlers import HandlerServer, Reply
from tests.support.kube import Kubectl
from tests.support.operator import OperatorProcess
from tests.support.world import World, world_in

NAMESPACE = "kattle-metrics"


@pytest.fixture
def metrics_world(api_client: Any, operator: Any, kubectl: Kubectl) -> Iterator[World]:
    with world_in(api_client, kubectl, NAMESPACE) as world:
        yield world


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _samples(base: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    status, text = _get(f"{base}/metrics")
    assert status == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_move_while_runs_go_through(
    metrics_world: World, handler_server: HandlerServer, kubeconfig: Path, tmp_path: Path
) -> None:
    world = metrics_world
    world.define_type()
    ok = world.process("ok", ["requested", "fine"], "oking", "fine")
    bad = world.process("bad", ["fine"], "bading", "broken")
    handler_server.script(f"/{world.type}/ok", Reply({}))
    handler_server.script(f"/{world.type}/bad", Reply({"oops": True}, status=500))
    good_handler = world.handler("ok", [ok], handler_server.url(f"/{world.type}/ok"))
    bad_handler = world.handler(
        "bad", [bad], handler_server.url(f"/{world.type}/bad"), retryLimit=0
    )
    base = f"http://127.0.0.1:{_free_port()}"
    operator = OperatorProcess(
        kubeconfig,
        tmp_path / "operator.log",
        f"--namespace={NAMESPACE}",
        f"--http-address={base.removeprefix('http://')}",
        "--log-format=json",
    ).start()
    try:
        assert _get(f"{base}/healthz") == (200, "ok")
        assert _get(f"{base}/readyz") == (200, "ok")
        world.wait_plan(ok, 1)
        world.wait_plan(bad, 1)
        before = _samples(base)
        world.create("a")
        world.wait_state("a", "requested")
        for process in (ok, ok, bad):
            world.wait_run(world.run(process, "a"))
        after = _samples(base)
    finally:
        operator.stop()

    def moved(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert moved("kattle_process_runs_started_total", process=ok) == 2
    assert moved("kattle_process_runs_finished_total", process=ok, exit_reason="Done") == 2
    assert (
        moved("kattle_process_runs_finished_total", process=bad, exit_reason="RetriesExhausted")
        == 1
    )
    assert moved("kattle_process_run_duration_seconds_count", process=ok) == 2
    assert (
        moved("kattle_handler_call_duration_seconds_count", handler=good_handler, phase="handler")
        == 2
    )
    assert moved("kattle_handler_call_errors_total", handler=bad_handler, reason="http_status") == 1
    assert moved("kattle_transitions_total", resource_type=world.type, to="oking") == 2
    assert moved("kattle_transitions_total", resource_type=world.type, to="fine") == 2
    assert _value(after, "kattle_runs_active") == 0
    assert _value(after, "kattle_events_dropped_total") == 0
    assert _value(after, "kattle_events_queued") >= 0
    assert _value(after, "kattle_catalog_definitions", kind="ProcessHandler") >= 2

    # Structured logs: each line about a run names the run, its process and its object.
    lines = [
        json.loads(line) for line in operator.log.read_text().splitlines() if line.startswith("{")
    ]
    about_runs = [line for line in lines if line.get("kattle", {}).get("process") in (ok, bad)]
    assert {line["kattle"]["object"] for line in about_runs} == {"a"}
    assert any(line["message"].endswith("ended Succeeded (Done)") for line in about_runs)
    failed = [line for line in about_runs if "ended Failed" in line["message"]]
    assert failed[0]["severity"] == "warn"
    assert failed[0]["kattle"]["run"].startswith(f"{NAMESPACE}/a.bad-")
