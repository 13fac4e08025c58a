"""The pure orchestration logic, apart from Kubernetes: ordering, admission, backoff, merge."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kattle.api import ProcessDefinition, ProcessHandler, ResourceDefinition
from kattle.machine.admission import Facts, Verdict, current_state, decide
from kattle.machine.backoff import retry_delay
from kattle.machine.catalog import Catalog, selector_matches
from kattle.machine.conditions import run_succeeded, set_condition
from kattle.machine.merge import merge
from kattle.machine.names import MAX_NAME, idempotency_key, run_name


def _rd(name: str = "instance", plural: str = "instances", **spec: Any) -> ResourceDefinition:
    return ResourceDefinition.model_validate(
        {
            "metadata": {"name": name},
            "spec": {"names": {"kind": "Instance", "plural": plural}, **spec},
        }
    )


def _pd(
    name: str, start: list[str], transitioning: str, done: str, **spec: Any
) -> ProcessDefinition:
    return ProcessDefinition.model_validate(
        {
            "metadata": {"name": name},
            "spec": {
                "resourceType": name.split(".")[0],
                "start": start,
                "transitioning": transitioning,
                "done": done,
                **spec,
            },
        }
    )


def _ph(
    name: str, processes: list[str], phase: str = "handler", priority: int = 1000
) -> ProcessHandler:
    return ProcessHandler.model_validate(
        {
            "metadata": {"name": name},
            "spec": {
                "processes": processes,
                "phase": phase,
                "priority": priority,
                "clientConfig": {"url": "https://h.example.com/"},
            },
        }
    )


def _catalog(*items: Any) -> Catalog:
    catalog = Catalog()
    for item in items:
        catalog.put(item)
    return catalog


def test_plan_orders_by_phase_priority_then_name() -> None:
    catalog = _catalog(
        _ph("z-post", ["instance.start"], "post", 0),
        _ph("b-pre", ["instance.start"], "pre", 10),
        _ph("a-pre", ["instance.start"], "pre", 10),
        _ph("early", ["instance.start"], "pre", 1),
        _ph("main", ["*.start"], "handler", 5),
        _ph("other", ["instance.stop"], "pre", 0),
        _ph("wild-other", ["*.stop"], "pre", 0),
    )
    plan = catalog.plan("instance.start")
    assert [s.handler for s in plan] == ["early", "a-pre", "b-pre", "main", "z-post"]
    assert [s.index for s in plan] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("selector", "process", "matches"),
    [
        ("instance.start", "instance.start", True),
        ("*.start", "volume.start", True),
        ("*.start", "volume.started", False),
        ("instance.start", "volume.start", False),
        ("*.create", "instance.start", False),
        ("instance.*", "instance.start", True),
        ("instance.*", "instances.start", False),
        ("instance.*", "volume.start", False),
        ("*", "volume.purge", True),
        ("vol*.st*", "volume.stop", True),
        ("vol*.st*", "volume.remove", False),
        ("instance.st?rt", "instance.start", True),
        ("*.start", "start", False),  # not a process name: no type
    ],
)
def test_selectors(selector: str, process: str, matches: bool) -> None:
    assert selector_matches(selector, process) is matches


def test_a_delete_process_reads_its_own_state_field() -> None:
    catalog = _catalog(
        _rd(),
        _pd("instance.remove", ["stopped"], "removing", "removed", trigger="delete"),
        _pd(
            "instance.release",
            ["allocated"],
            "releasing",
            "released",
            trigger="delete",
            stateField="allocationState",
        ),
    )
    # The main state says no; the allocation state says release.
    status = {"state": "running", "allocationState": "allocated"}
    assert catalog.delete_process("instance", status).metadata.name == "instance.release"  # type: ignore[union-attr]
    # Released, and `state` in no start state of remove: nothing more to run.
    assert catalog.delete_process("instance", {**status, "allocationState": "released"}) is None
    # `state` unset reads as the type's initial state; other fields unset match nothing,
    # unless the type gives them an initial state.
    assert catalog.delete_process("instance", {}) is None
    catalog.put(_rd(initialStates={"allocationState": "allocated"}))
    assert catalog.delete_process("instance", {}).metadata.name == "instance.release"  # type: ignore[union-attr]


def test_triggers_and_problems() -> None:
    catalog = _catalog(
        _rd(),
        _pd("instance.create", ["requested"], "creating", "stopped", trigger="create"),
        _pd("instance.remove", ["stopped", "error"], "removing", "removed", trigger="delete"),
        _pd("instance.purge", ["removed"], "removing", "purged", onError="instance.missing"),
        _pd("volume.create", ["requested"], "creating", "inactive", trigger="create"),
    )
    assert catalog.create_process("instance").metadata.name == "instance.create"  # type: ignore[union-attr]
    assert catalog.delete_process("instance", {"state": "error"}).metadata.name == "instance.remove"  # type: ignore[union-attr]
    assert catalog.delete_process("instance", {"state": "running"}) is None
    assert catalog.process_problems("instance.create") == []
    purge = catalog.process_problems("instance.purge")
    assert any("also instance.remove's" in p for p in purge)
    assert any("onError process instance.missing" in p for p in purge)
    assert catalog.process_problems("volume.create") == [
        "resource type 'volume' has no ResourceDefinition"
    ]
    assert catalog.states("instance") == [
        "creating",
        "error",
        "purged",
        "removed",
        "removing",
        "requested",
        "stopped",
    ]


@pytest.mark.parametrize(
    ("selectors", "attached", "problem"),
    [
        (["instance.start"], ["instance.start"], None),
        (["*.start"], ["instance.start", "volume.start"], None),
        (["instance.start", "*.stop"], ["instance.start", "instance.stop"], None),
        (["instance.purge"], [], "no ProcessDefinition matches instance.purge"),
        (["*.purge", "disk.start"], [], "no ProcessDefinition matches *.purge, disk.start"),
    ],
)
def test_what_a_handler_is_attached_to(
    selectors: list[str], attached: list[str], problem: str | None
) -> None:
    catalog = _catalog(
        _pd("instance.start", ["stopped"], "starting", "running"),
        _pd("instance.stop", ["running"], "stopping", "stopped"),
        _pd("volume.start", ["inactive"], "activating", "active"),
        _ph("h", selectors),
    )
    assert catalog.attached_to("h") == attached
    problems = catalog.handler_problems("h")
    assert problems == (
        [] if problem is None else [f"{problem}: the handler is called once one does"]
    )
    assert catalog.attached_to("missing") == []
    assert catalog.handler_problems("missing") == ["no ProcessHandler named missing"]


def test_on_error_must_start_where_a_failed_run_leaves_the_object() -> None:
    catalog = _catalog(
        _rd(),
        _pd("instance.error", ["creating"], "erroring", "error"),
        _pd("instance.start", ["stopped"], "starting", "running", onError="instance.error"),
    )
    assert catalog.process_problems("instance.start") == [
        "onError process instance.error cannot start from 'starting', where a failed run "
        "leaves the object: add it to instance.error's start states"
    ]


def test_two_definitions_of_one_crd_are_a_problem() -> None:
    catalog = _catalog(_rd("a", "things"), _rd("b", "things"))
    assert catalog.resource_problems("a") == [
        "ResourceDefinition b already generates things.resources.kattle.dev"
    ]


def test_each_state_field_starts_in_its_own_initial_state() -> None:
    spec = _rd(initialStates={"healthState": "unknown"}).spec
    assert spec.initial("state") == "requested"
    assert spec.initial("healthState") == "unknown"
    assert spec.initial("allocationState") is None
    assert current_state({}, "state", spec.initial("state")) == "requested"
    assert current_state({}, "healthState", spec.initial("healthState")) == "unknown"
    assert current_state({"healthState": "ok"}, "healthState", "unknown") == "ok"
    assert current_state({}, "allocationState", spec.initial("allocationState")) is None
    health = _pd("instance.check", ["unknown"], "checking", "ok", stateField="healthState")
    decision = decide(
        Facts(
            run="me",
            process="instance.check",
            spec=health.spec,
            initial=spec.initial("healthState"),
            status={"state": "running"},
        )
    )
    assert decision.verdict is Verdict.ADMIT
    assert decision.state == "unknown"


def test_cattle_backoff() -> None:
    assert retry_delay(0) == 0
    assert retry_delay(1) == pytest.approx(2.1)
    assert retry_delay(2) == pytest.approx(2.2)
    assert retry_delay(5) == pytest.approx(3.6)
    assert retry_delay(11) == 104.4
    assert retry_delay(12) == 120.0
    assert retry_delay(10**9) == 120.0


@given(st.integers(min_value=1, max_value=10_000))
def test_backoff_grows_and_is_capped(failures: int) -> None:
    assert 2.0 < retry_delay(failures) <= 120.0
    assert retry_delay(failures + 1) >= retry_delay(failures)


def test_merge_is_json_merge_patch() -> None:
    base = {"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2]}
    assert merge(base, {"b": {"c": 9, "d": None}, "e": [3], "f": {"g": 1}}) == {
        "a": 1,
        "b": {"c": 9},
        "e": [3],
        "f": {"g": 1},
    }
    assert base == {"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2]}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=10,
)
json_objects = st.dictionaries(st.text(max_size=3), json_values, max_size=4)


@given(json_objects, json_objects)
def test_merge_is_idempotent(base: dict[str, Any], patch: dict[str, Any]) -> None:
    once = merge(base, patch)
    assert merge(once, patch) == once


DNS_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"


@given(
    st.from_regex(DNS_SUBDOMAIN, fullmatch=True).filter(lambda n: len(n) <= MAX_NAME),
    st.sampled_from(["instance.start", "volume.create"]),
    st.text(max_size=40),
)
def test_run_names_are_valid_and_deterministic(obj: str, process: str, seed: str) -> None:
    """Any valid object name gives a valid, stable ProcessInstance name."""
    name = run_name(obj, process, seed)
    assert name == run_name(obj, process, seed)
    assert len(name) <= MAX_NAME
    assert re.fullmatch(DNS_SUBDOMAIN, name), name
    assert f".{process.partition('.')[2]}-" in name


def test_run_names_differ_per_cause() -> None:
    assert run_name("web", "instance.start", "uid-1") != run_name("web", "instance.start", "uid-2")
    assert idempotency_key("u", 2, "h") == "u/2/h"


def test_condition_transition_time_moves_only_on_change() -> None:
    first = set_condition([], type="Ready", status=True, reason="Ok", message="m")
    again = set_condition(
        [{**first[0], "lastTransitionTime": "2000-01-01T00:00:00Z"}],
        type="Ready",
        status=True,
        reason="Ok",
        message="other",
    )
    assert again[0]["lastTransitionTime"] == "2000-01-01T00:00:00Z"
    assert again[0]["message"] == "other"
    flipped = set_condition(again, type="Ready", status=False, reason="Bad", message="m")
    assert flipped[0]["lastTransitionTime"] != "2000-01-01T00:00:00Z"


def test_pruning_keeps_the_newest_ended_runs() -> None:
    from kattle.runner.history import History

    def run(name: str, end: str) -> dict[str, Any]:
        return {
            "metadata": {"name": name, "creationTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"phase": "Succeeded", "endTime": end},
        }

    history = History()
    for name, end in [
        ("old", "2026-01-01T00:00:01Z"),
        ("newest", "2026-01-01T00:00:09Z"),
        ("middle", "2026-01-01T00:00:05.5Z"),  # fractions sort by time, not as text
        ("whole", "2026-01-01T00:00:05Z"),
    ]:
        history.ended("obj", run(name, end))
    assert history.beyond("obj", 2) == ["old", "whole"]
    assert history.beyond("obj", 0) == ["old", "whole", "middle", "newest"]
    assert history.beyond("obj", 10) == []
    assert history.beyond("other", 0) == []
    history.forget("obj", "old")
    assert history.beyond("obj", 2) == ["whole"]


_state = st.sampled_from(["a", "b", "c", "d", "e", "ü", "x" * 63])
_process_specs = st.lists(
    st.tuples(
        st.lists(_state, min_size=1, max_size=3, unique=True),  # start
        _state,  # transitioning
        _state,  # done
        st.sampled_from([None, "create", "delete"]),  # trigger
        st.one_of(st.none(), st.integers(min_value=0, max_value=9)),  # onError: p<i>
    ),
    min_size=1,
    max_size=10,
)


@given(_process_specs, st.booleans())
def test_random_process_graphs_never_crash_the_catalog(
    specs: list[tuple[list[str], str, str, str | None, int | None]], with_type: bool
) -> None:
    """Cycles, unreachable and shared states, missing onError targets: every question the
    operator asks has an answer, and whatever cannot run says why in words."""
    catalog = _catalog(*([_rd("t", "ts")] if with_type else []))
    for i, (start, transitioning, done, trigger, on_error) in enumerate(specs):
        process = _pd(f"t.p{i}", ["s"], "m", "e")  # valid alone; then any graph in its place
        process.spec.start, process.spec.transitioning, process.spec.done = (
            start,
            transitioning,
            done,
        )
        if trigger:
            process.spec.trigger = trigger  # type: ignore[assignment]
        process.spec.on_error = None if on_error is None else f"t.p{on_error}"
        catalog.put(process)
    catalog.put(_ph("h", ["*.p0", "t.p1"]))
    for name in catalog.processes:
        problems = catalog.process_problems(name)
        assert all(isinstance(p, str) and p for p in problems)
        if not with_type:
            assert "resource type 't' has no ResourceDefinition" in problems
        catalog.plan(name)
    assert catalog.resource_problems("t") == (
        [] if with_type else ["no ResourceDefinition named t"]
    )
    states = catalog.states("t")
    assert set(states) >= {s for spec in specs for s in (*spec[0], spec[1], spec[2])}
    for state in [*states, None]:
        catalog.delete_process("t", {"state": state})
    catalog.create_process("t")


@pytest.mark.parametrize(
    ("phase", "exit_reason", "status", "reason"),
    [
        ("Pending", None, "Unknown", "Pending"),
        ("Running", None, "Unknown", "Running"),
        ("Retrying", None, "Unknown", "Retrying"),
        ("Succeeded", "Done", "True", "Done"),
        ("Succeeded", "AlreadyDone", "True", "AlreadyDone"),
        ("Failed", "RetriesExhausted", "False", "RetriesExhausted"),
        ("Failed", "OnError", "False", "OnError"),
        ("Canceled", "Canceled", "False", "Canceled"),
    ],
)
def test_a_runs_succeeded_condition_follows_its_phase(
    phase: str, exit_reason: str | None, status: str, reason: str
) -> None:
    (condition,) = run_succeeded([], phase, exit_reason, "why")
    assert (condition["type"], condition["status"], condition["reason"]) == (
        "Succeeded",
        status,
        reason,
    )
    assert condition["message"] == "why"


def test_a_runs_succeeded_condition_keeps_its_time_while_it_runs() -> None:
    running = run_succeeded([], "Running", None, "")
    earlier = [{**running[0], "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    retrying = run_succeeded(earlier, "Retrying", None, "boom")
    assert retrying[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    done = run_succeeded(earlier, "Succeeded", "Done", "")
    assert done[0]["lastTransitionTime"] != "2026-01-01T00:00:00Z"


def test_a_first_result_skips_the_later_handlers_of_its_phase_only() -> None:
    from kattle.machine.catalog import Step, overridden

    spec: Any = None
    plan = [
        Step(0, "audit", "pre", 1000, spec),
        Step(1, "custom", "handler", 1000, spec),
        Step(2, "builtin", "handler", 2000, spec),
        Step(3, "fallback", "handler", 3000, spec),
        Step(4, "notify", "post", 1000, spec),
    ]
    assert [s.handler for s in overridden(plan, plan[1])] == ["builtin", "fallback"]
    assert [s.handler for s in overridden(plan, plan[2])] == ["fallback"]
    assert overridden(plan, plan[3]) == []
    assert overridden(plan, plan[0]) == []  # a listener's reply ends nothing


@pytest.mark.parametrize(
    ("writes", "current", "cleared"),
    [
        (
            {"transitioningMessage": None, "transitioning": "no"},
            {"transitioningProgress": 40},
            True,
        ),
        ({"transitioningMessage": "disk full"}, {"transitioningProgress": 40}, True),
        ({"transitioningMessage": None}, {}, False),  # nothing shown: the write stays short
        (
            {"transitioningProgress": 80, "transitioningMessage": "x"},
            {"transitioningProgress": 40},
            False,
        ),
        ({"ip": "10.0.0.7"}, {"transitioningProgress": 40}, False),  # the message stays too
    ],
)
def test_a_progress_report_goes_with_the_message_it_came_with(
    writes: dict[str, Any], current: dict[str, Any], cleared: bool
) -> None:
    from kattle.machine.status import without_stale_progress

    out = without_stale_progress(writes, current)
    assert ("transitioningProgress" in out and out["transitioningProgress"] is None) == cleared
