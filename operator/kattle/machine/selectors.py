"""Label selectors, decided on plain data: which handlers a run on a given object calls.

The rules are Kubernetes' own for `matchLabels` and `matchExpressions` (In, NotIn, Exists,
DoesNotExist): every rule must hold, a missing label fails In and satisfies NotIn, and an
empty selector matches everything.
"""

from __future__ import annotations

from collections.abc import Mapping

from kattle.api.processhandler import LabelSelector, ProcessHandlerSpec


def matches(selector: LabelSelector | None, labels: Mapping[str, str]) -> bool:
    if selector is None:
        return True
    if any(labels.get(k) != v for k, v in selector.match_labels.items()):
        return False
    for rule in selector.match_expressions:
        present = rule.key in labels
        if rule.operator == "Exists" and not present:
            return False
        if rule.operator == "DoesNotExist" and present:
            return False
        if rule.operator == "In" and (not present or labels[rule.key] not in rule.values):
            return False
        if rule.operator == "NotIn" and present and labels[rule.key] in rule.values:
            return False
    return True


def applies(
    spec: ProcessHandlerSpec,
    object_labels: Mapping[str, str],
    namespace_labels: Mapping[str, str] | None,
) -> bool:
    """Whether a handler serves this object; `namespace_labels` None for a cluster-scoped
    object (which every namespaceSelector matches, as with admission webhooks)."""
    in_namespace = namespace_labels is None or matches(spec.namespace_selector, namespace_labels)
    return in_namespace and matches(spec.object_selector, object_labels)
