"""Delegation (Cattle's `delegate=` and a handler's shouldDelegate): a process hands its
run to another process of the same type, in the same ProcessInstance, decided on plain data.

The run keeps the object the whole time: it goes from the delegating process's
transitioning state straight into the delegate's, never into the done state between (so
no other run can take it there), and only the last process sets its done state. A
delegate must start from the delegating process's done state: where the object would have
been had the first process ended on its own.
"""

from __future__ import annotations

from collections.abc import Callable

from kattle.api.processdefinition import ProcessDefinitionSpec

# More hand-overs than this in one run is a loop no definition check could catch (replies
# choose their delegates at run time).
MAX_DELEGATIONS = 16


def problem(
    process: str,
    spec: ProcessDefinitionSpec,
    done: str,
    delegate: str,
    delegate_spec: ProcessDefinitionSpec | None,
) -> str | None:
    """Why `process` (ending in `done`) cannot hand its run to `delegate`; None if it can."""
    if delegate_spec is None:
        return f"{process} delegates to {delegate}, which has no ProcessDefinition"
    if delegate_spec.resource_type != spec.resource_type:
        return f"{process} delegates to {delegate}, a process of another type"
    if delegate_spec.state_field != spec.state_field:
        return (
            f"{process} delegates to {delegate}, which moves {delegate_spec.state_field}; "
            f"{process} moves {spec.state_field}"
        )
    if done not in delegate_spec.starts():
        return (
            f"{process} delegates to {delegate}, which does not start from {done}, where "
            f"{process} ends: add it to {delegate}'s start states"
        )
    return None


def definition_problems(
    process: str, spec: ProcessDefinitionSpec, lookup: Callable[[str], ProcessDefinitionSpec | None]
) -> list[str]:
    """What is wrong with a definition's `delegate`, for its status: the checks above for
    each way the process can end, and a loop of delegates."""
    if spec.delegate is None:
        return []
    found = [
        p
        for done in spec.dones()
        if (p := problem(process, spec, done, spec.delegate, lookup(spec.delegate)))
    ]
    seen: list[str] = [process]
    current: str | None = spec.delegate
    while current is not None and current not in seen:
        seen.append(current)
        following = lookup(current)
        current = following.delegate if following is not None else None
    if current is not None:
        found.append(f"delegates form a loop, {' -> '.join([*seen, current])}")
    return list(dict.fromkeys(found))
