"""CloudEvents HTTP binary-mode attributes on every handler call.

The body stays the ProcessEvent; these headers say what it is in CloudEvents terms, so
handlers built on CloudEvents tooling (Knative, event routers, the CloudEvents SDKs) take a
Kattle call as an event:

- `ce-id`: the step's idempotency key, the same on every attempt (CloudEvents' duplicate
  detection is on source and id, as Kattle's is on the key);
- `ce-source`: the run, as the path of its ProcessInstance;
- `ce-type`: `dev.kattle.processevent.v1alpha1`, with `ce-dataschema` its JSON Schema;
- `ce-subject`: the object the run is on, `<kind>/<name>`;
- `ce-time`: when the call was made.
"""

from __future__ import annotations

from datetime import UTC, datetime

from kattle.api.common import GROUP, VERSION
from kattle.api.schemas import BASE_ID
from kattle.api.webhook import ProcessEvent

EVENT_TYPE = f"dev.kattle.processevent.{VERSION}"
DATA_SCHEMA = f"{BASE_ID}/process-event.{VERSION}.json"


def binary_headers(event: ProcessEvent, *, now: datetime | None = None) -> dict[str, str]:
    run = event.run
    meta = event.resource.get("metadata") or {}
    at = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    source = f"/apis/{GROUP}/{VERSION}/namespaces/{run.namespace}/processinstances/{run.name}"
    return {
        "ce-specversion": "1.0",
        "ce-id": event.idempotency_key,
        "ce-source": source,
        "ce-type": EVENT_TYPE,
        "ce-dataschema": DATA_SCHEMA,
        "ce-subject": f"{event.resource.get('kind', '')}/{meta.get('name', '')}",
        "ce-time": at,
    }
