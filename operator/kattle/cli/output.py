"""Printing as kubectl does: aligned tables with upper-case headers, or JSON/YAML for scripts.

Pure functions over plain data, so they are tested without a cluster.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import yaml

from kattle.machine.times import parse_time


def add_output_flag(parser: argparse.ArgumentParser, *choices: str) -> None:
    parser.add_argument(
        "-o",
        "--output",
        choices=choices,
        help=f"output format: {', '.join(choices)} (default: a table)",
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell and three spaces apart, as `kubectl get` prints."""
    widths = [
        max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)
    ]
    lines = []
    for row in [headers, *rows]:
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def document(value: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(value, indent=4) + "\n"
    return yaml.safe_dump(value, sort_keys=False, default_flow_style=False)


def human_duration(seconds: float) -> str:
    """kubectl's short durations: 850ms, 12s, 3m4s, 5h6m, 7d."""
    if seconds < 1:
        return f"{max(seconds, 0) * 1000:.0f}ms"
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60}s" if whole % 60 else f"{whole // 60}m"
    if whole < 86400:
        return (
            f"{whole // 3600}h{whole % 3600 // 60}m" if whole % 3600 >= 60 else f"{whole // 3600}h"
        )
    return f"{whole // 86400}d"


def age(value: str | None, now: datetime | None = None) -> str:
    when = parse_time(value)
    if when is None:
        return "<unknown>"
    return human_duration(((now or datetime.now(UTC)) - when).total_seconds())


def between(start: str | None, end: str | None) -> str:
    first, last = parse_time(start), parse_time(end)
    if first is None or last is None:
        return "-"
    return human_duration((last - first).total_seconds())
