"""Merging process data and status writes the way JSON merge patch (RFC 7386) does.

Handlers add to the process data; later handlers see what earlier ones added. Maps merge
key by key, anything else is replaced, and a null value removes the key: the same rules a
handler author already knows from `kubectl patch --type=merge`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def merge(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: `base` with `patch` merged in (neither argument is changed)."""
    result = dict(base)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merge(result[key], value)
        elif isinstance(value, Mapping):
            result[key] = merge({}, value)
        else:
            result[key] = value
    return result
