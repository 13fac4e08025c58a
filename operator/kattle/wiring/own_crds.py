"""Kattle's own CRDs, applied by the operator as it starts (`--manage-crds`).

Helm installs a chart's `crds/` folder on the first install and never again, so a new
version's CRD changes would never reach a cluster through `helm upgrade`. With this flag
(the chart's default) each operator applies the CRDs it was built with, by server-side
apply, before it watches anything: `helm upgrade` to a new image upgrades them as the new
operator starts. The content is `kattle crds`'s, so crds/, the chart and the operator agree.
"""

from __future__ import annotations

import logging

import yaml

from kattle.api import crds
from kattle.kube.client import CRDS, KubeClient

logger = logging.getLogger(__name__)


async def apply_own_crds(kube: KubeClient) -> list[str]:
    """Applies every Kattle CRD (the Kopf peering ones too); their names."""
    applied = []
    for text in crds.rendered_files().values():
        crd = yaml.safe_load(text)
        name = crd["metadata"]["name"]
        await kube.patch(CRDS, name, crd, patch_type="apply", force=True)
        applied.append(name)
    logger.info("applied Kattle's CRDs: %s", ", ".join(applied))
    return applied
