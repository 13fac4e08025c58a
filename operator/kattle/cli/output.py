"""Printing as kubectl does: aligned tables with upper-case headers, or for scripts JSON,
YAML, `-o name` (`processinstance.kattle.dev/web-1.start-x7k2p`) and `-o jsonpath=TEMPLATE`.

Pure functions over plain data, so they are tested without a cluster.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import yaml
from argcomplete.completers import ChoicesCompleter

from kattle.cli.jsonpath import TemplateError, parse_template, render
from kattle.cli.kube import CommandError
from kattle.machine.times import parse_time

# Formats that print the objects themselves, for scripts; the others are tables or drawings.
DOCUMENT_FORMATS = ("json", "yaml", "name", "jsonpath")


def add_output_flag(
    parser: argparse.ArgumentParser, *choices: str, default: str = "a table"
) -> None:
    shown = [f"{c}=TEMPLATE" if c == "jsonpath" else c for c in choices]
    action = parser.add_argument(
        "-o",
        "--output",
        type=_output_choice(choices),
        metavar="FORMAT",
        help=f"output format: {', '.join(shown)} (default: {default})",
    )
    completed = [f"{c}=" if c == "jsonpath" else c for c in choices]
    action.completer = ChoicesCompleter(dict.fromkeys(completed, ""))  # type: ignore[attr-defined]


def _output_choice(choices: Sequence[str]) -> Callable[[str], str]:
    """Checks `-o` as argparse's `choices` would, with kubectl's `jsonpath=TEMPLATE`."""

    def check(value: str) -> str:
        name, sep, _ = value.partition("=")
        if name not in choices or bool(sep) != (name == "jsonpath"):
            allowed = ", ".join(f"{c}=TEMPLATE" if c == "jsonpath" else c for c in choices)
            raise argparse.ArgumentTypeError(f"{value!r}: allowed formats are {allowed}")
        return value

    check.__name__ = "output format"  # what argparse names in its error
    return check


def document_printer(output: str | None) -> Callable[[Any], str] | None:
    """How to print an object or a List for `-o json|yaml|name|jsonpath=...`; None for the
    other formats. A template is parsed here, before any request, so a bad one fails at
    once with kubectl's words."""
    name, _, template = (output or "").partition("=")
    if name not in DOCUMENT_FORMATS:
        return None
    if name == "name":
        return names
    if name != "jsonpath":
        return lambda value: document(value, name)
    try:
        nodes = parse_template(template)
    except TemplateError as error:
        raise CommandError(f"error parsing jsonpath {template}, {error}") from None
    return lambda value: render(nodes, value)


def resource_name(obj: dict[str, Any]) -> str:
    """`kind.group/name`, as `kubectl get -o name` prints it (`kind/name` for core kinds)."""
    group = str(obj.get("apiVersion") or "").rpartition("/")[0]
    kind = str(obj.get("kind") or "").lower()
    name = (obj.get("metadata") or {}).get("name") or ""
    return f"{kind}.{group}/{name}" if group else f"{kind}/{name}"


def names(value: dict[str, Any]) -> str:
    """`-o name`: one line for an object, one for each item of a List."""
    items = value.get("items") if "items" in value else [value]
    return "".join(resource_name(item) + "\n" for item in items or [])


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
