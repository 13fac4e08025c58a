"""Where Kattle's own kinds and the generated kinds live in the API."""

from __future__ import annotations

from kattle.api.common import GROUP, VERSION
from kattle.api.resourcedefinition import ResourceDefinition
from kattle.kube.client import Kind

RESOURCE_DEFINITIONS = Kind(GROUP, VERSION, "resourcedefinitions", namespaced=False)
PROCESS_DEFINITIONS = Kind(GROUP, VERSION, "processdefinitions", namespaced=False)
PROCESS_HANDLERS = Kind(GROUP, VERSION, "processhandlers", namespaced=False)
PROCESS_INSTANCES = Kind(GROUP, VERSION, "processinstances", namespaced=True)


def kind_of(definition: ResourceDefinition) -> Kind:
    spec = definition.spec
    return Kind(spec.group, spec.version, spec.names.plural, spec.scope == "Namespaced")
