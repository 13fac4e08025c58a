"""Whether two replies to the same event say the same thing: the idempotency check.

Handlers must answer a repeated idempotency key the same way (the operator calls a step
again after a timeout, a lost reply or a restart). `kattle operator --check-idempotency` and
`kattle.sdk.testing.assert_idempotent` call each step twice and compare the replies here.
The `message` is a note for the log and may differ (a timestamp, a counter of calls); every
field that changes the run must not.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# Fields that only annotate the run's log: two calls may word them differently.
NOTES = frozenset({"message"})


def differences(first: Mapping[str, Any], second: Mapping[str, Any], path: str = "") -> list[str]:
    """Where two replies (as sent on the wire) differ, as `path: first != second` lines."""
    found = []
    for key in sorted(set(first) | set(second)):
        if not path and key in NOTES:
            continue
        where = f"{path}.{key}" if path else key
        a, b = first.get(key), second.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            found += differences(a, b, where)
        elif a != b:
            found.append(f"{where}: {_short(a)} != {_short(b)}")
    return found


def verdict(
    handler: str, key: str, first: Mapping[str, Any], second: Mapping[str, Any]
) -> str | None:
    """None when the replies agree; else the step's error message, with the differences."""
    found = differences(first, second)
    if not found:
        return None
    shown = "; ".join(found[:5]) + (f"; and {len(found) - 5} more" if len(found) > 5 else "")
    return (
        f"handler {handler} is not idempotent: two calls with idempotency key {key} gave "
        f"different replies ({shown})"
    )


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."
