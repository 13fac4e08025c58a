"""A chain a run names itself (`spec.chain`, Cattle's chainProcess): what its end writes."""

from __future__ import annotations

from datetime import UTC, datetime

from kattle.api.processinstance import ProcessInstanceSpec
from kattle.machine import ending

AT = datetime(2026, 1, 1, tzinfo=UTC)
RUN = ending.Run("web.deactivate-x", "instance.deactivate", "active", AT, AT, {"k": 1})


def test_done_then_chained_writes_the_done_state_and_hands_the_object_over_at_once() -> None:
    decided = ending.done_then_chained(
        RUN,
        state_field="state",
        transitioning="deactivating",
        state="inactive",
        handler_writes={"ip": None},
        target="instance.remove",
        child="web.remove-y",
    )
    assert (decided.phase, decided.reason, decided.chained_to) == (
        "Succeeded",
        "Chained",
        "web.remove-y",
    )
    writes = decided.writes or {}
    # The done state, and the chained run holding the object: no run comes in between.
    assert writes["state"] == "inactive"
    assert writes["transitioning"] == "no"
    assert (writes["process"], writes["activeRun"]) == ("instance.remove", "web.remove-y")
    assert writes["ip"] is None
    assert writes["lastRun"]["exitReason"] == "Chained"
    assert writes["lastRun"]["chainedTo"] == "web.remove-y"
    assert writes["lastRun"]["data"] == {"k": 1}
    assert decided.transitions == (("deactivating", "inactive"),)
    assert decided.event is not None
    assert decided.event.note == (
        "instance.deactivate: active -> deactivating -> inactive, then instance.remove "
        "(web.remove-y)"
    )


def test_already_done_with_a_chain_still_chains_without_touching_the_object() -> None:
    decided = ending.already_done_chained(
        RUN, state="inactive", target="instance.remove", child="web.remove-y"
    )
    assert (decided.phase, decided.reason, decided.chained_to) == (
        "Succeeded",
        "Chained",
        "web.remove-y",
    )
    assert decided.writes is None  # never held: nothing to hand over
    assert decided.message == "already inactive; chained instance.remove (web.remove-y)"
    assert decided.transitions == ()


def test_already_done_without_a_chain_is_the_end() -> None:
    decided = ending.already_done(RUN, state="inactive")
    assert (decided.reason, decided.chained_to, decided.writes) == ("AlreadyDone", None, None)


def test_the_spec_names_a_chain_of_the_same_type_only() -> None:
    spec = ProcessInstanceSpec.model_validate(
        {"process": "instance.deactivate", "resource": {"name": "web"}, "chain": "instance.remove"}
    )
    assert spec.chain == "instance.remove"
    rules = [r["rule"] for r in ProcessInstanceSpec.model_json_schema()["x-kubernetes-validations"]]
    assert "self.chain.split('.')[0] == self.process.split('.')[0]" in rules[0]
