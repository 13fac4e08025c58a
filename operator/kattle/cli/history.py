"""`kattle history [KIND[/NAME]]` and `kattle describe pi/NAME`: runs, and a run's log.

The ProcessInstances are the durable record (Events expire within hours): history lists an
object's runs newest first (or a type's, or every run; `-A` in every namespace), describe
prints one run as Cattle's process log.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from kattle.cli.kube import (
    CommandError,
    Kattle,
    add_connection_flags,
    api_client,
    split_target,
    target_object,
)
from kattle.cli.output import add_output_flag, age, between, document_printer, table
from kattle.machine.times import parse_time
from kattle.runner.history import RESOURCE_LABEL, TYPE_LABEL

RUN_NAMES = {"pi", "processinstance", "processinstances"}
EPOCH = datetime.fromtimestamp(0, UTC)


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    history = commands.add_parser(
        "history",
        help="process runs, newest first, e.g. `kattle history instance/web-1`, `-A`",
        description=(
            "List the ProcessInstances of the object KIND/NAME, of every object of KIND, or "
            "all of them, newest first; -A: in every namespace."
        ),
    )
    history.add_argument(
        "target",
        nargs="?",
        help="KIND/NAME of the object, or KIND for all of that type (kind, plural or short "
        "name); none: every run",
    )
    history.add_argument(
        "--runs-namespace",
        metavar="NS",
        help="where runs of cluster-scoped kinds live (default: default, as the operator's)",
    )
    add_output_flag(history, "wide", "json", "yaml", "name", "jsonpath")
    add_connection_flags(history, all_namespaces=True)
    history.set_defaults(handler=run_history)

    describe = commands.add_parser(
        "describe",
        help="one run's full log, e.g. `kattle describe pi/web-1.start-x7k2p`",
        description="Print a ProcessInstance as a process log: transitions and handler calls.",
    )
    describe.add_argument("target", help="pi/NAME")
    add_connection_flags(describe)
    describe.set_defaults(handler=run_describe)


def run_history(args: argparse.Namespace) -> int:
    printer = document_printer(args.output)
    runs, nothing = _listed_runs(args)
    if printer is not None:
        sys.stdout.write(printer({"apiVersion": "v1", "kind": "List", "items": runs}))
        return 0
    if not runs:
        print(nothing, file=sys.stderr)
        return 0
    headers, rows = history_table(
        runs, wide=args.output == "wide", all_namespaces=args.all_namespaces
    )
    sys.stdout.write(table(headers, rows))
    return 0


def _listed_runs(args: argparse.Namespace) -> tuple[list[dict[str, Any]], str]:
    """The runs asked for, newest first (by namespace first with -A, as kubectl groups
    them), and what to say when there are none."""
    if args.target and "/" in args.target:
        if args.all_namespaces:
            # kubectl's own refusal: a name names an object in one namespace.
            raise CommandError("a resource cannot be retrieved by name across all namespaces")
        kattle, resource, obj = target_object(args)
        name = obj["metadata"]["name"]
        namespace = obj["metadata"].get("namespace") or args.runs_namespace or "default"
        selector = f"{TYPE_LABEL}={resource['metadata']['name']},{RESOURCE_LABEL}={name}"
        runs = kattle.list("processinstances", namespace, selector)
        return newest_first(
            runs
        ), f"No runs recorded for {resource['spec']['names']['kind']} {name}."
    api, namespace = api_client(args)
    kattle = Kattle(api)
    selector = ""
    if args.target:
        resource = kattle.resource_type(args.target)
        selector = f"{TYPE_LABEL}={resource['metadata']['name']}"
        if resource["spec"].get("scope") == "Cluster":
            namespace = args.runs_namespace or "default"
    if args.all_namespaces:
        runs = kattle.list("processinstances", None, selector)
        return by_namespace(newest_first(runs)), "No runs found."
    runs = kattle.list("processinstances", namespace, selector)
    return newest_first(runs), f"No runs found in {namespace} namespace."


def by_namespace(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(runs, key=lambda run: run["metadata"].get("namespace") or "")


def newest_first(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def key(run: dict[str, Any]) -> tuple[datetime, str]:
        status = run.get("status") or {}
        started = status.get("startTime") or run["metadata"].get("creationTimestamp")
        return parse_time(started) or EPOCH, run["metadata"]["name"]

    return sorted(runs, key=key, reverse=True)


def history_table(
    runs: list[dict[str, Any]],
    *,
    wide: bool = False,
    now: datetime | None = None,
    all_namespaces: bool = False,
) -> tuple[list[str], list[list[str]]]:
    """kubectl's columns; with all_namespaces a NAMESPACE column first, as `kubectl get -A`."""
    headers = ["NAME", "PROCESS", "PHASE", "EXIT", "DURATION", "HANDLERS", "AGE"]
    if wide:
        headers += ["TRIGGER", "MESSAGE"]
    rows = _run_rows(runs, wide=wide, now=now)
    if all_namespaces:
        return ["NAMESPACE", *headers], [[namespace, *row] for namespace, row in rows]
    return headers, [row for _, row in rows]


def _run_rows(
    runs: list[dict[str, Any]], *, wide: bool, now: datetime | None
) -> list[tuple[str, list[str]]]:
    """Each run's row, and its related runs' rows under it, with the run's namespace
    (empty for the related runs, which are listed under their parent)."""
    rows: list[tuple[str, list[str]]] = []
    for run in runs:
        status = run.get("status") or {}
        spec = run.get("spec") or {}
        row = [
            run["metadata"]["name"],
            spec.get("process", ""),
            status.get("phase", "Pending"),
            status.get("exitReason") or "-",
            between(status.get("startTime"), status.get("endTime")),
            handler_summary(status.get("handlerCalls") or []),
            age(run["metadata"].get("creationTimestamp"), now),
        ]
        if wide:
            message = (status.get("message") or "").splitlines()
            row += [spec.get("trigger", "manual"), message[0][:80] if message else ""]
        rows.append((run["metadata"].get("namespace") or "", row))
        rows += [("", child) for child in child_rows(status.get("children") or [], wide=wide)]
    return rows


def child_rows(children: list[dict[str, Any]], *, wide: bool = False) -> list[list[str]]:
    """A run's related runs, as a tree under it: each with its object and relation."""
    rows = []
    for index, child in enumerate(children):
        branch = "└─ " if index == len(children) - 1 else "├─ "
        row = [
            f"{branch}{child.get('name', '')}",
            f"{child.get('process', '')} on {child.get('resource', '')}",
            child.get("phase") or "Pending",
            child.get("exitReason") or "-",
            between(child.get("startTime"), child.get("endTime")),
            f"{child.get('relation', '')} (attempt {child.get('attempt', 1)})",
            "",
        ]
        if wide:
            row += ["related", ""]
        rows.append(row)
    return rows


def handler_summary(calls: list[dict[str, Any]]) -> str:
    """Each handler once, in call order, with its attempts when it needed more than one."""
    attempts: dict[str, int] = {}
    for call in calls:
        attempts[call["handler"]] = max(attempts.get(call["handler"], 0), call.get("attempt", 1))
    if not attempts:
        return "<none>"
    return ",".join(f"{h}(x{n})" if n > 1 else h for h, n in attempts.items())


def run_describe(args: argparse.Namespace) -> int:
    kind, name = split_target(args.target)
    if kind.lower() not in RUN_NAMES:
        raise CommandError(f"describe shows runs: pi/NAME, not {kind!r}")
    api, namespace = api_client(args)
    sys.stdout.write(describe_text(Kattle(api).get("processinstances", name, namespace)))
    return 0


def describe_text(run: dict[str, Any]) -> str:
    meta, spec, status = run["metadata"], run.get("spec") or {}, run.get("status") or {}
    target = spec.get("resource") or {}
    lines = [
        f"Name:         {meta['name']}",
        f"Namespace:    {meta.get('namespace', '')}",
        f"Process:      {spec.get('process', '')}",
        f"Object:       {target.get('name', '')}",
        f"Trigger:      {spec.get('trigger', 'manual')}"
        + (f" (from {spec['parent']})" if spec.get("parent") else ""),
        f"Phase:        {status.get('phase', 'Pending')}"
        + (f" ({status['exitReason']})" if status.get("exitReason") else ""),
        f"Started:      {status.get('startTime', '-')}",
        f"Ended:        {status.get('endTime', '-')}",
        f"Duration:     {between(status.get('startTime'), status.get('endTime'))}",
    ]
    if status.get("chainedTo"):
        lines.append(f"Chained to:   {status['chainedTo']}")
    if status.get("message"):
        lines.append(f"Message:      {status['message']}")
    if spec.get("data"):
        lines.append(f"Input:        {json.dumps(spec['data'], sort_keys=True)}")
    if status.get("data"):
        lines.append(f"Data:         {json.dumps(status['data'], sort_keys=True)}")
    if status.get("children"):
        lines.append("Related runs:")
        lines += [
            f"  {c.get('relation')}: {c.get('process')} on {c.get('resource')} "
            f"({c.get('name')}, attempt {c.get('attempt', 1)}): {c.get('phase') or 'Pending'}"
            + (f" ({c['exitReason']})" if c.get("exitReason") else "")
            for c in status["children"]
        ]
    if spec.get("ancestry"):
        chain = " -> ".join(f"{a['process']} on {a['resource']}" for a in spec["ancestry"])
        lines.append(f"Started by:   {chain}")
    # Sorted by parsed time: the API server and the operator write different precisions.
    log = [(t.get("time"), 0, _transition(t)) for t in status.get("transitions") or []]
    log += [(c.get("start"), 1, _call(c)) for c in status.get("handlerCalls") or []]
    log.sort(key=lambda entry: (parse_time(entry[0]) or EPOCH, entry[1]))
    lines.append("Log:")
    if not log:
        lines.append("  <none>")
    lines += [f"  {when or '-'}  {text}" for when, _, text in log]
    return "\n".join(lines) + "\n"


def _transition(t: dict[str, Any]) -> str:
    return f"{t.get('field', 'state')}: {t.get('from') or '(none)'} -> {t.get('to')}"


def _call(c: dict[str, Any]) -> str:
    took = between(c.get("start"), c.get("stop"))
    message = f": {c['message']}" if c.get("message") else ""
    return (
        f"{c.get('phase')} {c.get('handler')} attempt {c.get('attempt', 1)}, "
        f"{c.get('outcome') or 'running'} in {took}{message}"
    )
