"""Process selectors: the globs ProcessHandlers and SDK registrations name processes with.

Shared by the operator's catalog and the handler SDK, so a selector means the same on both
sides of a call. Standard library only: the slim SDK distribution (sdk/pyproject.toml) ships
this module without the rest of the machine.
"""

from __future__ import annotations

import fnmatch


def selector_matches(selector: str, process: str) -> bool:
    """`instance.start` matches itself; globs as Cattle's extension lists had them:
    `*.start` the start process of every type, `instance.*` every process of a type, `*`
    every process (`*` and `?` as in shell globs; no character classes)."""
    return selector == process or fnmatch.fnmatchcase(process, selector)
