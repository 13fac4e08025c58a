"""A failure that says what the test saw: a kill test's failure is only worth something if
what led to it can be read (and, for a randomized one, tried again with the same seed)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support.world import GROUP, TEST_GROUP, VERSION, World

# Set to a seed a failure printed to sleep the same random spans between kills again (the
# moments the kills land still depend on the machine's load).
SEED_VARIABLE = "KATTLE_TEST_SEED"


class Witness:
    """Makes every failure inside it say the seed (when the test has one), the kills and
    what the test saw (`seen`, called only when a failure comes, so it reads the cluster as
    the failure left it and costs nothing otherwise). A `wait_for` that times out is such a
    failure too. The seed's line is ready before anything can fail."""

    def __init__(self, seen: Callable[[], str], seed: int | None = None) -> None:
        self.seed, self.seen = seed, seen
        self.kills = 0

    def __enter__(self) -> Witness:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: Any
    ) -> None:
        # KeyboardInterrupt and pytest's own outcomes (skip, exit) pass through as they are.
        if error is None or not isinstance(error, Exception):
            return
        heading = f"{self.kills} kills: {type(error).__name__}: {error}"
        if self.seed is not None:
            heading = f"{SEED_VARIABLE}={self.seed}, {heading}"
        try:
            seen = self.seen()
        except Exception as unreadable:  # the failure itself must still be reported
            seen = f"  (what the test saw could not be read: {unreadable})"
        raise AssertionError(f"{heading}\nwhat the test saw:\n{seen}") from error


def runs_seen(world: World, names: list[str]) -> str:
    """Each object's state and runs, one line an object; objects that look alike are
    written once, with a count, so the odd ones stand out among hundreds."""
    bodies = world.custom.list_namespaced_custom_object(
        TEST_GROUP, "v1", world.namespace, world.plural
    )["items"]
    statuses = {b["metadata"]["name"]: b.get("status") or {} for b in bodies}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for pi in world.custom.list_namespaced_custom_object(
        GROUP, VERSION, world.namespace, "processinstances"
    )["items"]:
        if pi["spec"]["process"].partition(".")[0] == world.type:  # not another type's
            runs.setdefault(pi["spec"]["resource"]["name"], []).append(pi)
    alike: dict[str, list[str]] = {}
    for name in names:
        status = statuses.get(name)
        where = "gone" if status is None else f"{status.get('state')}/{status.get('transitioning')}"
        if status and status.get("activeRun"):
            where += f" held by {status['activeRun']}"
        shape = "; ".join(_run_line(pi) for pi in sorted(runs[name], key=_run_order))
        alike.setdefault(f"{where}: {shape or 'no runs'}", []).append(name)
    lines = []
    for shape, objects in sorted(alike.items(), key=lambda item: len(item[1])):
        more = f" (and {len(objects) - 1} more like it)" if len(objects) > 1 else ""
        lines.append(f"  {objects[0]}{more}: {shape}")
    return "\n".join(lines)


def _run_order(pi: dict[str, Any]) -> tuple[str, str]:
    return pi["metadata"]["creationTimestamp"], pi["spec"]["process"]


def _run_line(pi: dict[str, Any]) -> str:
    """A run as process, phase, exit reason and transitions: its generated name differs
    between objects, so it is left out for objects to compare alike."""
    status = pi.get("status") or {}
    path = ">".join(
        [t["from"] for t in status.get("transitions", [])[:1]]
        + [t["to"] for t in status.get("transitions", [])]
    )
    verb = pi["spec"]["process"].partition(".")[2]
    return f"{verb} {status.get('phase') or 'no phase'} {status.get('exitReason') or ''} {path}"
