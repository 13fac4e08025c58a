"""Turns DOT into SVG or PNG with Graphviz's `dot`, which is a program, not a library.

Kept apart from the builders: diagrams are made and stored without Graphviz; only showing
them as pictures needs it.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Literal

Format = Literal["svg", "png"]
INSTALL_HINT = "install Graphviz (e.g. `apt-get install graphviz` or `brew install graphviz`)"


class GraphvizError(Exception):
    """dot failed; the message carries what it said."""


class GraphvizMissingError(GraphvizError):
    """dot is not installed."""


def render(dot_source: str, fmt: Format, *, timeout: float = 60.0) -> bytes:
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizMissingError(f"rendering {fmt} needs Graphviz's `dot`: {INSTALL_HINT}")
    result = subprocess.run(
        [dot, f"-T{fmt}"], input=dot_source.encode(), capture_output=True, timeout=timeout
    )
    if result.returncode != 0:
        raise GraphvizError(f"dot failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout
