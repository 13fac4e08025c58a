"""Which runs begin without a ProcessInstance, decided on plain data.

The operator starts a process's `create` and `delete` runs from the object alone and names
them from the object's uid and the process. So a run of such a process can begin without a
record: if the operator stops while the run holds the object, the object's status names the
run (`activeRun`) and its process, and the operator starts it again, by the same name, from
there. Any other run began with a record or is named by one, so it keeps one.

Two modes use that. `record: OnFailure` keeps no record of a lifecycle run that succeeds.
`record: Always` (the default) writes a create run's record once, complete, as the run
ends: one write where creating it first and finishing it later is two. If the operator is
killed between the object's last write and that record, the object's `lastRun` still holds
the run's summary, and the next run on the object writes the record from it. A delete run
of `Always` keeps its record from the start: its object is gone once it ends, and with it
the summary a lost record would be written from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kattle.api.processdefinition import UNRECORDED_TRIGGERS, ProcessDefinitionSpec
from kattle.machine.names import run_name

# The lifecycle runs that begin without a record in the default mode too.
WRITTEN_AT_END = frozenset({"create"})


def goes_unrecorded(spec: ProcessDefinitionSpec, trigger: str) -> bool:
    """Whether a run of the process started by `trigger` begins without a record."""
    if trigger != spec.trigger or trigger not in UNRECORDED_TRIGGERS:
        return False
    return spec.record == "OnFailure" or trigger in WRITTEN_AT_END


def keeps_success(spec: ProcessDefinitionSpec | None) -> bool:
    """Whether a run that succeeds keeps its record (a vanished definition: it does)."""
    return spec is None or spec.record == "Always"


def lifecycle_run_name(meta: Mapping[str, Any], process: str) -> str:
    """The name of the run the operator starts itself on the object (create, delete)."""
    return run_name(str(meta["name"]), process, str(meta.get("uid") or ""))


def unrecorded_holder(
    meta: Mapping[str, Any],
    status: Mapping[str, Any],
    spec_of: Callable[[str], ProcessDefinitionSpec | None],
) -> str | None:
    """The run without a record that holds the object, when its status says one may: the
    holder has the name the operator gives its own run of the process in `status.process`,
    and that process's runs go unrecorded."""
    holder, process = status.get("activeRun"), status.get("process")
    if not isinstance(holder, str) or not isinstance(process, str) or not holder:
        return None
    spec = spec_of(process)
    if spec is None or not goes_unrecorded(spec, spec.trigger):
        return None
    return holder if holder == lifecycle_run_name(meta, process) else None


def adoption(
    meta: Mapping[str, Any], labels: Mapping[str, str], owner: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The metadata an ended run's record gets in its last write: the `labels` it lacks (a
    user's own ProcessInstance may have none) and its object as owner. A record has no owner
    while its run goes on, so the garbage collector cannot delete it mid-run, as a
    foreground deletion of the object would (the collector deletes an object's dependents
    first); from its end it goes with the object."""
    have = meta.get("labels") or {}
    adopted: dict[str, Any] = {}
    missing = {key: value for key, value in labels.items() if have.get(key) != value}
    if missing:
        adopted["labels"] = missing
    if owner is not None and not meta.get("ownerReferences"):
        adopted["ownerReferences"] = [dict(owner)]
    return adopted


def lost_record(
    meta: Mapping[str, Any],
    status: Mapping[str, Any],
    spec_of: Callable[[str], ProcessDefinitionSpec | None],
) -> Mapping[str, Any] | None:
    """The object's `lastRun`, when it names a run whose record is written as it ends and
    kept (a create run of `record: Always`): if that record is missing, the operator was
    killed before writing it, and it is written from this summary."""
    last = status.get("lastRun")
    if not isinstance(last, Mapping):
        return None
    process = last.get("process")
    spec = spec_of(process) if isinstance(process, str) else None
    if spec is None or spec.trigger not in WRITTEN_AT_END or not keeps_success(spec):
        return None
    if not goes_unrecorded(spec, spec.trigger):
        return None
    return last if last.get("name") == lifecycle_run_name(meta, str(process)) else None
