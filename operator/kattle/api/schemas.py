"""JSON Schemas of the webhook protocol, for people writing handlers in any language.

Generated from the pydantic models the operator validates replies with (`make generate`
writes them to docs/protocol/; a unit test fails when they are stale).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from kattle.api.common import VERSION
from kattle.api.webhook import ProcessEvent, ProcessReply

BASE_ID = "https://kattle.dev/schemas"
MODELS: dict[str, type[BaseModel]] = {
    "process-event": ProcessEvent,
    "process-reply": ProcessReply,
}


def schema(name: str) -> dict[str, Any]:
    model = MODELS[name]
    # Events are what the operator sends (serialization); replies what it accepts (validation).
    mode: Literal["validation", "serialization"] = (
        "serialization" if model is ProcessEvent else "validation"
    )
    body = model.model_json_schema(by_alias=True, mode=mode)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{BASE_ID}/{name}.{VERSION}.json",
        **body,
    }


def rendered_files() -> dict[str, str]:
    return {
        f"{name}.{VERSION}.schema.json": json.dumps(schema(name), indent=2, sort_keys=True) + "\n"
        for name in MODELS
    }


def write_files(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in rendered_files().items():
        path = folder / name
        path.write_text(text)
        written.append(path)
    return written
