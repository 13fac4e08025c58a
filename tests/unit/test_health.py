"""The conditions tools read on orchestrated objects, checked against kstatus's rules.

`kstatus` below follows the generic rules sigs.k8s.io/cli-utils documents for custom
resources (in this order): `metadata.generation` ahead of `status.observedGeneration` is
InProgress; `Reconciling` True is InProgress; `Stalled` True is Failed; otherwise Current.
"""

from __future__ import annotations

from typing import Any

import pytest

from kattle.machine.health import health, spec_acknowledgement, with_health


def kstatus(obj: dict[str, Any]) -> str:
    status = obj.get("status") or {}
    generation = obj["metadata"].get("generation")
    observed = status.get("observedGeneration")
    if observed is not None and generation is not None and observed != generation:
        return "InProgress"
    true = {c["type"] for c in status.get("conditions") or [] if c["status"] == "True"}
    if "Reconciling" in true:
        return "InProgress"
    if "Stalled" in true:
        return "Failed"
    return "Current"


def obj_after(
    writes: dict[str, Any], before: dict[str, Any], generation: int = 1
) -> dict[str, Any]:
    current = {"metadata": {"generation": generation}, "status": before}
    return {
        "metadata": {"generation": generation},
        "status": {**before, **with_health(writes, current, "state")},
    }


RUNNING = {"state": "starting", "transitioning": "yes", "process": "instance.start"}
FAILING = {"transitioning": "error", "transitioningMessage": "no address left"}
DONE = {"state": "running", "transitioning": "no", "process": None}


@pytest.mark.parametrize(
    ("writes", "before", "expected", "ready"),
    [
        (RUNNING, {"state": "stopped"}, "InProgress", "False"),
        (FAILING, {**RUNNING}, "Failed", "False"),
        (DONE, {**RUNNING}, "Current", "True"),
        # a run that failed, then succeeded on a retry: Stalled goes, Ready comes back
        (DONE, {**RUNNING, **FAILING}, "Current", "True"),
        # taken again after an error: Stalled goes, Reconciling comes
        (RUNNING, {"state": "starting", **FAILING}, "InProgress", "False"),
    ],
)
def test_each_state_reads_as_kstatus_says(
    writes: dict[str, Any], before: dict[str, Any], expected: str, ready: str
) -> None:
    # `before` is what an earlier write left, conditions included.
    prior = obj_after(before, {}) if "transitioning" in before else {"status": before}
    after = obj_after(writes, prior["status"])
    assert kstatus(after) == expected, after
    conditions = {c["type"]: c for c in after["status"]["conditions"]}
    assert conditions["Ready"]["status"] == ready
    assert set(conditions) <= {"Ready", "Reconciling", "Stalled"}
    assert all(c["status"] == "True" for t, c in conditions.items() if t != "Ready")
    assert after["status"]["observedGeneration"] == 1


def test_writes_that_do_not_move_transitioning_add_nothing() -> None:
    assert with_health({"ip": "10.0.0.7"}, {"metadata": {"generation": 3}}, "state") == {
        "ip": "10.0.0.7"
    }


def test_other_conditions_are_kept_and_times_move_only_on_change() -> None:
    deletable = {
        "type": "Deletable",
        "status": "False",
        "reason": "NoDeleteProcess",
        "message": "m",
    }
    first = health(
        [deletable], transitioning="yes", state="s", process="p", message=None, generation=1
    )
    second = health(
        first["conditions"], transitioning="yes", state="s", process="p", message=None, generation=1
    )
    assert deletable in first["conditions"]
    times = {c["type"]: c.get("lastTransitionTime") for c in first["conditions"]}
    assert {c["type"]: c.get("lastTransitionTime") for c in second["conditions"]} == times
    assert (
        next(c for c in second["conditions"] if c["type"] == "Ready")["reason"] == "Transitioning"
    )


@pytest.mark.parametrize(
    ("status", "generation", "write"),
    [
        ({"state": "running", "observedGeneration": 1}, 2, {"observedGeneration": 2}),
        ({"state": "running", "observedGeneration": 2}, 2, None),
        ({"state": "running"}, 2, None),  # never observed: kstatus does not compare
        (
            {"state": "starting", "activeRun": "r", "observedGeneration": 1},
            2,
            None,
        ),  # the run writes it
    ],
)
def test_a_spec_change_on_an_idle_object_is_acknowledged(
    status: dict[str, Any], generation: int, write: dict[str, Any] | None
) -> None:
    assert spec_acknowledgement(status, generation) == write
