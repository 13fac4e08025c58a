"""Kattle's API (group kattle.dev, version v1alpha1): the one source of truth for the CRDs."""

from kattle.api.common import API_VERSION, CATEGORY, GROUP, VERSION, Condition, ObjectMeta
from kattle.api.processdefinition import ProcessDefinition, ProcessDefinitionSpec
from kattle.api.processhandler import ProcessHandler, ProcessHandlerSpec, WebhookClientConfig
from kattle.api.processinstance import ProcessInstance, ProcessInstanceSpec, ProcessInstanceStatus
from kattle.api.resourcedefinition import ResourceDefinition, ResourceDefinitionSpec

__all__ = [
    "API_VERSION",
    "CATEGORY",
    "GROUP",
    "VERSION",
    "Condition",
    "ObjectMeta",
    "ProcessDefinition",
    "ProcessDefinitionSpec",
    "ProcessHandler",
    "ProcessHandlerSpec",
    "ProcessInstance",
    "ProcessInstanceSpec",
    "ProcessInstanceStatus",
    "ResourceDefinition",
    "ResourceDefinitionSpec",
    "WebhookClientConfig",
]
