"""The CLI's tables and logs, from plain ProcessInstance data."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kattle.cli.history import (
    child_rows,
    describe_text,
    handler_summary,
    history_table,
    newest_first,
)
from kattle.cli.output import human_duration, table
from kattle.cli.tree import Node, tree_dot, tree_json, tree_rows

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def _run(name: str, start: str, end: str | None, **status: object) -> dict[str, object]:
    return {
        "metadata": {"name": name, "namespace": "default", "creationTimestamp": start},
        "spec": {"process": "instance.start", "resource": {"name": "web-1"}, "trigger": "manual"},
        "status": {"startTime": start, "endTime": end, **status},
    }


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0123, "12ms"),
        (2.34, "2.3s"),
        (42, "42s"),
        (180, "3m"),
        (184, "3m4s"),
        (7260, "2h1m"),
        (7200, "2h"),
        (3 * 86400, "3d"),
    ],
)
def test_durations_read_like_kubectl(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_tables_align_columns() -> None:
    assert table(["NAME", "PHASE"], [["a-long-name", "Succeeded"], ["b", "Failed"]]) == (
        "NAME          PHASE\na-long-name   Succeeded\nb             Failed\n"
    )


def test_history_lists_runs_newest_first_with_their_handlers() -> None:
    calls = [
        {"handler": "validate", "phase": "pre", "attempt": 1},
        {"handler": "allocate", "phase": "handler", "attempt": 1},
        {"handler": "allocate", "phase": "handler", "attempt": 2},
    ]
    runs = newest_first(
        [
            _run(
                "old",
                "2026-11-25T11:00:00Z",
                "2026-11-25T11:00:00.250000Z",
                phase="Succeeded",
                exitReason="Done",
            ),
            _run("new", "2026-11-25T11:59:00Z", None, phase="Running", handlerCalls=calls),
        ]
    )
    headers, rows = history_table(runs, wide=True, now=NOW)
    assert headers == [
        "NAME",
        "PROCESS",
        "PHASE",
        "EXIT",
        "DURATION",
        "HANDLERS",
        "AGE",
        "TRIGGER",
        "MESSAGE",
    ]
    assert rows[0] == [
        "new",
        "instance.start",
        "Running",
        "-",
        "-",
        "validate,allocate(x2)",
        "1m",
        "manual",
        "",
    ]
    assert rows[1][:7] == ["old", "instance.start", "Succeeded", "Done", "250ms", "<none>", "1h"]
    assert handler_summary([]) == "<none>"


def test_describe_prints_the_log_in_time_order() -> None:
    run = _run(
        "web-1.start-x",
        "2026-11-25T11:00:00Z",
        "2026-11-25T11:00:01Z",
        phase="Failed",
        exitReason="Failed",
        message="image forbidden",
        transitions=[
            {"field": "state", "from": "stopped", "to": "starting", "time": "2026-11-25T11:00:00Z"}
        ],
        handlerCalls=[
            {
                "handler": "validate",
                "phase": "pre",
                "attempt": 1,
                "start": "2026-11-25T11:00:00.100000Z",
                "stop": "2026-11-25T11:00:00.150000Z",
                "outcome": "Error",
                "message": "image forbidden",
            }
        ],
    )
    text = describe_text(run)
    assert "Phase:        Failed (Failed)\n" in text
    assert "Duration:     1.0s\n" in text
    log = text.split("Log:\n")[1].splitlines()
    assert log == [
        "  2026-11-25T11:00:00Z  state: stopped -> starting",
        "  2026-11-25T11:00:00.100000Z  pre validate attempt 1, Error in 50ms: image forbidden",
    ]


def test_history_shows_related_runs_as_a_tree_under_their_parent() -> None:
    child = {
        "name": "d1.activate-1",
        "process": "volume.activate",
        "resource": "d1",
        "relation": "volumes",
        "attempt": 1,
        "phase": "Succeeded",
        "exitReason": "Done",
        "startTime": "2026-12-04T10:00:00Z",
        "endTime": "2026-12-04T10:00:02Z",
    }
    rows = child_rows([child, {**child, "name": "eth0.activate-2", "phase": None}])
    assert rows == [
        [
            "├─ d1.activate-1",
            "volume.activate on d1",
            "Succeeded",
            "Done",
            "2.0s",
            "volumes (attempt 1)",
            "",
        ],
        [
            "└─ eth0.activate-2",
            "volume.activate on d1",
            "Pending",
            "Done",
            "2.0s",
            "volumes (attempt 1)",
            "",
        ],
    ]


def _tree() -> Node:
    disk = Node("Volume", "d1", {"state": "active"}, "volumes")
    gone = Node("Nic", "eth9", {}, "nic", note="does not exist")
    return Node(
        "Instance", "db-1", {"state": "running", "transitioning": "no"}, children=[disk, gone]
    )


def test_a_tree_reads_like_crossplane_trace() -> None:
    assert tree_rows(_tree()) == [
        ["Instance/db-1", "running", "-", "no"],
        ["├─ volumes: Volume/d1", "active", "-", "-"],
        ["└─ nic: Nic/eth9 (does not exist)", "-", "-", "-"],
    ]
    assert tree_json(_tree())["related"][0] == {
        "kind": "Volume",
        "name": "d1",
        "status": {"state": "active"},
        "relation": "volumes",
        "related": [],
    }
    dot = tree_dot(_tree())
    assert '"Instance/db-1" -> "Volume/d1" [label="volumes"];' in dot
    assert 'label="Volume/d1\\nactive"' in dot


def test_a_wide_tree_adds_each_objects_last_run_and_its_message() -> None:
    last = {"process": "instance.start", "exitReason": "Done", "name": "db-1.start-x"}
    stuck = "relatedRuns[0] (volume.activate on volumes): d1 ended Failed: " + "disk full " * 10
    disk = Node(
        "Volume",
        "d1",
        {
            "state": "activating",
            "process": "volume.activate",
            "transitioning": "error",
            "transitioningMessage": stuck,
            "lastRun": {"process": "volume.activate", "exitReason": "RetriesExhausted"},
        },
        "volumes",
    )
    root = Node("Instance", "db-1", {"state": "running", "lastRun": last}, children=[disk])
    rows = tree_rows(root, wide=True)
    assert rows == [
        ["Instance/db-1", "running", "-", "-", "instance.start Done", ""],
        [
            "└─ volumes: Volume/d1",
            "activating",
            "volume.activate",
            "error",
            "volume.activate RetriesExhausted",
            stuck[:80],
        ],
    ]
    # Never run: no last run to show, and the narrow columns are those of the plain tree.
    fresh = Node("Nic", "eth0", {"state": "inactive"}, "nic")
    assert tree_rows(fresh, wide=True)[0][4:] == ["-", ""]
    assert [row[:4] for row in tree_rows(root, wide=True)] == tree_rows(root)
    lines = table(["NAME", "STATE", "PROCESS", "TRANSITIONING", "LAST RUN", "MESSAGE"], rows)
    assert lines.splitlines()[0].split() == [
        "NAME",
        "STATE",
        "PROCESS",
        "TRANSITIONING",
        "LAST",
        "RUN",
        "MESSAGE",
    ]
    assert lines.splitlines()[1].rstrip().endswith("instance.start Done"), lines
