"""docs/protocol/ holds the webhook protocol's JSON Schemas, generated from the models."""

from __future__ import annotations

import json

from kattle.api import schemas
from kattle.api.webhook import ProcessReply
from tests.support.paths import REPO

FOLDER = REPO / "docs" / "protocol"


def test_committed_schemas_are_what_the_models_generate() -> None:
    for name, text in schemas.rendered_files().items():
        path = FOLDER / name
        assert path.exists(), f"docs/protocol/{name} is missing: run `make generate`"
        assert path.read_text() == text, f"docs/protocol/{name} is stale: run `make generate`"


def test_schemas_describe_every_field() -> None:
    reply = json.loads((FOLDER / "process-reply.v1alpha1.schema.json").read_text())
    assert set(reply["properties"]) == {
        "data",
        "status",
        "chain",
        "delegate",
        "retryAfterSeconds",
        "error",
        "permanent",
        "continue",
        "progress",
        "message",
        "events",
        "runs",
    }
    for name, field in reply["properties"].items():
        assert field.get("description"), name
    event = json.loads((FOLDER / "process-event.v1alpha1.schema.json").read_text())
    assert {"idempotencyKey", "attempt", "resource", "data", "fromState"} <= set(
        event["properties"]
    )
    assert event["$id"].endswith("process-event.v1alpha1.json")


def test_an_empty_reply_is_valid() -> None:
    assert ProcessReply.model_validate({}) == ProcessReply()
