"""The admission policy that decides who may start a run.

Creating a ProcessInstance makes the operator change an object's state and call handlers
about it, so a run acts on the object with the operator's rights. The policy keeps that
from being a way around RBAC: a user may create a ProcessInstance only if they may update
(or patch) the object it names. It is a ValidatingAdmissionPolicy, checked by the API
server itself with its own authorizer, so no webhook has to be up for runs to be created.

Each ResourceDefinition is a parameter of the policy: for every run, the definition whose
name is the process name's prefix supplies the group and plural to check (the others
pass). The operator's own runs (create, delete, chain, onError) pass because it may patch
the objects of its kinds.

A second policy guards the records themselves. A ProcessInstance has no status
subresource, so that the operator can create a run's record complete in one write; then a
create or an update could carry any status. The policy lets a ProcessInstance's status be
set or changed only by who may update `processinstances/status` (the operator's role
grants it; the aggregated roles do not), the permission a status subresource would ask for.
"""

from __future__ import annotations

from typing import Any

from kattle.api.common import GROUP, VERSION
from kattle.api.resourcedefinition import ResourceDefinition

POLICY_NAME = f"run-access.{GROUP}"
RECORDS_POLICY_NAME = f"run-records.{GROUP}"
FILE_NAME = f"{GROUP}_run-access-policy.yaml"

_TARGET = (
    "params.spec.scope == 'Cluster'"
    " ? authorizer.group(params.spec.group).resource(params.spec.names.plural)"
    ".name(object.spec.resource.name)"
    " : authorizer.group(params.spec.group).resource(params.spec.names.plural)"
    ".namespace(object.metadata.namespace).name(object.spec.resource.name)"
)
_APPLIES = "object.spec.process.startsWith(params.metadata.name + '.')"
_ALLOWED = "variables.target.check('update').allowed() || variables.target.check('patch').allowed()"
_MESSAGE = (
    "request.userInfo.username + ' may not run ' + object.spec.process + ' on '"
    " + params.spec.names.plural + '/' + object.spec.resource.name"
    " + ': starting a run needs permission to update that object'"
)


def _document(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "kattle"}},
        "spec": spec,
    }


def _runs(*operations: str) -> dict[str, Any]:
    """Match ProcessInstance writes of these operations."""
    rule = {
        "apiGroups": [GROUP],
        "apiVersions": ["*"],
        "operations": list(operations),
        "resources": ["processinstances"],
    }
    return {"resourceRules": [rule]}


def _deny(expression: str, message: str) -> list[dict[str, Any]]:
    return [{"expression": expression, "messageExpression": message, "reason": "Forbidden"}]


def policy() -> dict[str, Any]:
    spec = {
        "failurePolicy": "Fail",
        "paramKind": {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": ResourceDefinition.crd_info.kind,
        },
        "matchConstraints": _runs("CREATE"),
        "variables": [{"name": "target", "expression": _TARGET}],
        "validations": _deny(f"!({_APPLIES}) || {_ALLOWED}", _MESSAGE),
    }
    return _document("ValidatingAdmissionPolicy", POLICY_NAME, spec)


_STATUS_CHANGED = (
    "request.operation == 'CREATE'"
    " ? has(object.status)"
    " : has(object.status) != has(oldObject.status)"
    " || (has(object.status) && object.status != oldObject.status)"
)
_RECORDS = (
    f"authorizer.group('{GROUP}').resource('processinstances').subresource('status')"
    ".namespace(object.metadata.namespace).name(object.metadata.name)"
)
_RECORDS_MESSAGE = (
    "request.userInfo.username + ' may not write the record of run '"
    " + object.metadata.name + ': writing the status of a ProcessInstance needs permission to"
    " update processinstances/status (the operator writes it)'"
)


def records_policy() -> dict[str, Any]:
    spec = {
        "failurePolicy": "Fail",
        "matchConstraints": _runs("CREATE", "UPDATE"),
        # Only writes that set or change a status are checked: annotating a run (a
        # replay request) or creating one stays as open as before.
        "matchConditions": [{"name": "status-changed", "expression": _STATUS_CHANGED}],
        "variables": [{"name": "records", "expression": _RECORDS}],
        "validations": _deny(
            "variables.records.check('update').allowed()"
            " || variables.records.check('patch').allowed()",
            _RECORDS_MESSAGE,
        ),
    }
    return _document("ValidatingAdmissionPolicy", RECORDS_POLICY_NAME, spec)


def binding() -> dict[str, Any]:
    spec = {
        "policyName": POLICY_NAME,
        # Every ResourceDefinition; none at all means no kind a run could act on.
        "paramRef": {"selector": {}, "parameterNotFoundAction": "Allow"},
        "validationActions": ["Deny"],
    }
    return _document("ValidatingAdmissionPolicyBinding", POLICY_NAME, spec)


def records_binding() -> dict[str, Any]:
    spec = {"policyName": RECORDS_POLICY_NAME, "validationActions": ["Deny"]}
    return _document("ValidatingAdmissionPolicyBinding", RECORDS_POLICY_NAME, spec)


def documents() -> list[dict[str, Any]]:
    return [policy(), binding(), records_policy(), records_binding()]
