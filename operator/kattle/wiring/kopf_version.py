"""The Kopf releases Kattle is tested with, checked before the operator starts.

Kattle sets Kopf settings that older releases lack and silently ignore
(`settings.watching.chunk_size`), and wraps one private Kopf function
(`wiring/watch_seam.py`). A Kopf outside the tested range could run with either quietly
lost, so the operator refuses to start on one and says which range it needs.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version

# Keep in step with pyproject.toml's `kopf>=...,<...` (a unit test checks they agree).
TESTED_FROM = (1, 45, 2)
TESTED_BELOW = (1, 46, 0)


def parse(text: str) -> tuple[int, int, int] | None:
    """`1.45.2` -> (1, 45, 2); pre-releases and local builds count as their release."""
    found = re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?", text)
    if found is None:
        return None
    major, minor, patch = found.groups()
    return int(major), int(minor), int(patch or 0)


def _dotted(parts: tuple[int, ...]) -> str:
    return ".".join(map(str, parts))


def untested(installed: str | None) -> str | None:
    """Why this Kopf may not run Kattle, in one line; None when it is in the tested range."""
    wanted = f"kopf>={_dotted(TESTED_FROM)},<{_dotted(TESTED_BELOW)}"
    if installed is None:
        return f"Kopf is not installed; Kattle needs {wanted}"
    parsed = parse(installed)
    if parsed is None or not TESTED_FROM <= parsed < TESTED_BELOW:
        return (
            f"Kopf {installed} is installed, but Kattle is tested with {wanted} only: "
            f"install that range (pip install '{wanted}')"
        )
    return None


def installed_kopf() -> str | None:
    try:
        return version("kopf")
    except PackageNotFoundError:
        return None
