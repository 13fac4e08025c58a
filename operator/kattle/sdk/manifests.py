"""The ProcessHandler manifests for a HandlerApp's registrations: what to `kubectl apply` so
the operator calls the service the app runs in.

    print(handler_manifests(app, service="payments/ipam:8080", prefix="ipam"))

One ProcessHandler per `@app.on` registration: its process (or glob), its phase (`handler`
when the registration takes any), the Service as the client config (plain HTTP inside the
cluster unless `scheme="https"`), and the signing Secret when given one.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from kattle.sdk.app import HandlerApp


def _service(reference: str, scheme: str) -> dict[str, Any]:
    match = re.fullmatch(r"([a-z0-9-]+)/([a-z0-9-]+)(?::(\d+))?", reference)
    if match is None:
        raise ValueError(f"service {reference!r} is not NAMESPACE/NAME[:PORT]")
    namespace, name, port = match.groups()
    return {
        "namespace": namespace,
        "name": name,
        "port": int(port or (443 if scheme == "https" else 80)),
        "path": "/",
        "scheme": scheme,
    }


def handler_manifests(
    app: HandlerApp,
    *,
    service: str,
    prefix: str,
    scheme: str = "http",
    signing_secret: str | None = None,
) -> str:
    """YAML for every registration; `signing_secret` is NAMESPACE/NAME of its Secret."""
    docs = []
    for selector, phase, fn in app.registrations():
        name = re.sub(r"[^a-z0-9-]+", "-", f"{prefix}-{fn.__name__}".lower()).strip("-")
        spec: dict[str, Any] = {
            "processes": [selector],
            "phase": phase or "handler",
            "clientConfig": {"service": _service(service, scheme)},
        }
        if signing_secret:
            namespace, _, secret = signing_secret.partition("/")
            spec["signingSecretRef"] = {"namespace": namespace, "name": secret}
        docs.append(
            {
                "apiVersion": "kattle.dev/v1alpha1",
                "kind": "ProcessHandler",
                "metadata": {"name": name[:253]},
                "spec": spec,
            }
        )
    return yaml.safe_dump_all(docs, sort_keys=False)
