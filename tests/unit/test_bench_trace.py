"""`hack/bench_trace.py` splits a run into the API server's time per write and the time
between writes, from audit events: checked on a run whose times are known."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from tests.support.paths import load_hack_module

trace = load_hack_module("bench_trace")

START = 1_800_000_000.0  # a run's request, in seconds since the epoch


def audit_line(verb: str, resource: str, received_ms: float, complete_ms: float) -> str:
    def stamp(ms: float) -> str:
        return datetime.fromtimestamp(START + ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    plural, _, sub = resource.partition("/")
    ref = {"resource": plural, **({"subresource": sub} if sub else {})}
    return json.dumps(
        {
            "stage": "ResponseComplete",
            "verb": verb,
            "objectRef": ref,
            "requestReceivedTimestamp": stamp(received_ms),
            "stageTimestamp": stamp(complete_ms),
        }
    )


def test_a_run_splits_into_each_write_and_the_time_between(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text(
        "\n".join(
            [
                audit_line("create", "processinstances", 1, 4),
                audit_line("patch", "things/status", 6, 8),  # the take
                audit_line("get", "things", 8.5, 9),  # a read: not a write
                audit_line("patch", "things/status", 11, 13),  # the done write
                audit_line("delete", "processinstances", 13.5, 14),  # pruning, beside the run
                audit_line("patch", "processinstances", 14, 18),  # the record
                audit_line("create", "processinstances", 40, 42),  # the next run's
            ]
        )
        + "\n"
    )
    run = trace.TracedRun("a.poke-x", START, START + 0.019, START + 0.0095)
    steps = trace.steps(run, trace.audited_writes(log))
    assert [(s.label, s.ms, s.server) for s in steps] == [
        ("the benchmark to CREATE processinstances", 1.0, False),
        ("CREATE processinstances in the API server", 3.0, True),
        ("CREATE processinstances to PATCH things/status", 2.0, False),
        ("PATCH things/status in the API server", 2.0, True),
        ("PATCH things/status to the handler's call", 1.5, False),
        ("the handler's call to PATCH things/status", 1.5, False),
        ("PATCH things/status in the API server", 2.0, True),
        ("PATCH things/status to PATCH processinstances", 1.0, False),
        ("PATCH processinstances in the API server", 4.0, True),
        ("PATCH processinstances to the benchmark's watch", 1.0, False),
    ]
    assert sum(s.ms for s in steps) == 19.0


def test_medians_are_taken_over_the_runs_of_the_most_common_shape() -> None:
    def run(*parts: tuple[str, float, bool]) -> list[object]:
        return [trace.Step(label, ms, server) for label, ms, server in parts]

    common = [("between", 1.0, False), ("write", 2.0, True)]
    slower = [("between", 3.0, False), ("write", 4.0, True)]
    odd = [("between", 50.0, False), ("write", 2.0, True), ("retry", 9.0, True)]
    result = trace.medians([run(*common), run(*slower), run(*common), run(*odd)])
    assert result["runs"] == 3
    assert result["parts"] == [
        {"part": "between", "ms": 1.0, "api_server": False},
        {"part": "write", "ms": 2.0, "api_server": True},
    ]
    assert result["total_ms"] == 3.0
    assert result["api_server_ms"] == 2.0
    assert trace.medians([]) == {}
