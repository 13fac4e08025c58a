"""Which runs go without a ProcessInstance (`record: OnFailure`), decided on plain data.

The operator starts a process's `create` and `delete` runs from the object alone and names
them from the object's uid and the process. So a run of such a process can begin without a
record: if the operator stops while the run holds the object, the object's status names the
run (`activeRun`) and its process, and the operator starts it again, by the same name, from
there. Any other run began with a record or is named by one, so it keeps one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kattle.api.processdefinition import UNRECORDED_TRIGGERS, ProcessDefinitionSpec
from kattle.machine.names import run_name


def goes_unrecorded(spec: ProcessDefinitionSpec, trigger: str) -> bool:
    """Whether a run of the process started by `trigger` begins without a record."""
    return spec.record == "OnFailure" and trigger == spec.trigger and trigger in UNRECORDED_TRIGGERS


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
