"""`kattle run PROCESS KIND/NAME`: starts a manual process and, with --wait, follows it.

`--dry-run=client` prints the ProcessInstance it would create; `--dry-run=server` sends it
with `dryRun=All`, so the API server's validation and admission (the run access policy)
judge it, and prints what the server returned; neither creates anything.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from typing import Any, cast

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from kattle.api.common import GROUP, VERSION
from kattle.api.processinstance import FINAL_PHASES
from kattle.cli.kube import (
    CommandError,
    Kattle,
    add_connection_flags,
    api_client,
    api_message,
    names_of,
    split_target,
)
from kattle.cli.output import add_output_flag, document_printer, resource_name
from kattle.runner.history import run_labels

PLURAL = "processinstances"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "run",
        help="run a manual process on an object, e.g. `kattle run instance.start instance/web`",
        description="Create a ProcessInstance that runs PROCESS on the object KIND/NAME.",
    )
    parser.add_argument("process", help="the process, e.g. instance.start")
    parser.add_argument("target", help="KIND/NAME of the object (kind, plural or short name)")
    parser.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="input data for the handlers (repeatable; VALUE may be JSON)",
    )
    parser.add_argument(
        "--chain",
        metavar="PROCESS",
        help="a process of the same type to run once this one succeeds, also when the object "
        "is in its done state already (spec.chain)",
    )
    parser.add_argument(
        "--wait", action="store_true", help="follow the run to its end; exit 1 unless it succeeds"
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait with --wait (default: 300)"
    )
    parser.add_argument(
        "--dry-run",
        choices=["none", "client", "server"],
        default="none",
        help="client: print the run it would create; server: also have the API server "
        "validate and admit it; neither creates it (default: none)",
    )
    add_output_flag(
        parser,
        "json",
        "yaml",
        "name",
        "jsonpath",
        default="a line naming the run; with --wait its log follows on standard error",
    )
    add_connection_flags(parser)
    parser.set_defaults(handler=run)


def parse_data(values: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for value in values:
        key, sep, raw = value.partition("=")
        if not sep or not key:
            raise CommandError(f"--data {value!r}: expected KEY=VALUE")
        try:
            data[key] = json.loads(raw)
        except ValueError:
            data[key] = raw
    return data


def run(args: argparse.Namespace) -> int:
    kind, name = split_target(args.target)
    if args.process.count(".") != 1:
        raise CommandError(f"{args.process!r}: a process is named <type>.<verb>")
    if args.dry_run != "none" and args.wait:
        raise CommandError(f"--dry-run={args.dry_run} creates no run to wait for: drop --wait")
    printer = document_printer(args.output)
    api, namespace = api_client(args)
    custom = client.CustomObjectsApi(api)
    body = run_body(Kattle(api), args.process, kind, name, namespace, parse_data(args.data))
    if args.chain:
        body["spec"]["chain"] = args.chain
    created = _create(custom, namespace, body, args.dry_run)
    if printer is None:
        note = {"none": "", "client": " (dry run)", "server": " (server dry run)"}[args.dry_run]
        print(f"{resource_name(created)} created{note}")
    else:
        sys.stdout.write(printer(created))
    if not args.wait:
        return 0
    # With -o, standard output holds only the object, for scripts; the log goes to stderr.
    log = contextlib.redirect_stdout(sys.stderr) if printer else contextlib.nullcontext()
    with log:
        return follow(
            custom,
            namespace,
            created["metadata"]["name"],
            args.timeout,
            created["metadata"]["resourceVersion"],
        )


def run_body(
    kattle: Kattle, process: str, kind: str, name: str, namespace: str, data: dict[str, Any]
) -> dict[str, Any]:
    """The ProcessInstance that runs `process` on KIND/NAME. Read from the cluster even for
    a client dry run (which writes nothing), as `kubectl apply --dry-run=client` reads the
    live object: the run names its object's uid and owner, which only the cluster knows, and
    a run on a missing object or of the wrong kind is better refused before it is made."""
    type_name = process.partition(".")[0]
    try:
        resource = kattle.get("resourcedefinitions", type_name)
    except CommandError:
        raise CommandError(f"no ResourceDefinition named {type_name!r}") from None
    if kind.lower() not in names_of(resource):
        kind_name = resource["spec"]["names"]["kind"]
        raise CommandError(f"{process} runs on {kind_name} objects, not {kind!r}")
    obj = kattle.object(resource, name, namespace)
    # Labelled as the operator's own runs are, so it need not write them itself; the run's
    # last write makes the object its owner (a running record is no garbage collector's).
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ProcessInstance",
        "metadata": {
            "generateName": f"{name[:200]}.{process.partition('.')[2]}-",
            "namespace": namespace,
            "labels": run_labels(type_name, name),
        },
        "spec": {
            "process": process,
            "resource": {"name": name, "uid": obj["metadata"]["uid"]},
            "data": data,
        },
    }


def _create(
    custom: client.CustomObjectsApi, namespace: str, body: dict[str, Any], dry_run: str
) -> dict[str, Any]:
    """The run as created, as the server would create it (server), or as it stands (client)."""
    if dry_run == "client":
        return body
    try:
        return cast(
            dict[str, Any],
            custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                body,
                dry_run="All" if dry_run == "server" else None,
            ),
        )
    except ApiException as error:
        raise CommandError(api_message(error)) from None


class _Shown:
    """What has been printed of one run, so each entry is printed once."""

    def __init__(self) -> None:
        self.transitions = 0
        self.calls = 0
        self.phase: str | None = None

    def show(self, pi: dict[str, Any]) -> bool:
        """Prints what is new in the run's log; True once the run has ended."""
        status = pi.get("status") or {}
        phase = status.get("phase")
        calls = status.get("handlerCalls") or []
        transitions = status.get("transitions") or []
        entries = [("t", t) for t in transitions[self.transitions :]] + [
            ("c", c) for c in calls[self.calls :]
        ]
        entries.sort(key=lambda e: e[1].get("time") or e[1].get("start") or "")
        for what, entry in entries:
            print(_transition_line(entry) if what == "t" else _call_line(entry))
        self.transitions, self.calls = len(transitions), len(calls)
        # After the entries: `Retrying: ...` follows the call that failed.
        if phase != self.phase and phase not in FINAL_PHASES and phase:
            note = f": {status['message']}" if status.get("message") else ""
            print(f"{phase}{note}")
            self.phase = phase
        return phase in FINAL_PHASES


def follow(
    custom: client.CustomObjectsApi,
    namespace: str,
    name: str,
    timeout: float,
    resource_version: str | None = None,
) -> int:
    """Prints each transition and handler call as the run records them, until it ends;
    then follows the run it chained or handed over to (onError). Exits 0 if the run, or
    the chain it started, succeeded: a run that failed and handed over to its onError
    process exits 1 however that one ends, and the last line says so."""
    deadline = time.monotonic() + timeout
    ended: list[dict[str, Any]] = []
    while True:
        pi = _watch_until_ended(custom, namespace, name, deadline, resource_version)
        ended.append(pi)
        print(ended_line(pi))
        status = pi.get("status") or {}
        child = status.get("chainedTo")
        if not child or status.get("exitReason") not in ("Chained", "OnError"):
            code, last = outcome(ended)
            if last:
                print(last)
            return code
        print(f"processinstance.{GROUP}/{child} continues")
        name, resource_version = child, None


def ended_line(pi: dict[str, Any]) -> str:
    status = pi.get("status") or {}
    message = f": {status['message']}" if status.get("message") else ""
    return f"{status.get('phase')} ({status.get('exitReason') or ''}){message}"


def outcome(ended: list[dict[str, Any]]) -> tuple[int, str | None]:
    """The exit code of a followed run and the runs it handed over to, in order, and a
    last line when the last run's own line would not tell it: 0 only if every run
    succeeded."""
    failed = next(
        (pi for pi in ended if (pi.get("status") or {}).get("phase") != "Succeeded"), None
    )
    if failed is None:
        return 0, None
    if failed is ended[-1]:
        return 1, None
    process = failed["spec"]["process"]
    return 1, f"Failed: {process} ended {ended_line(failed)}"


def _watch_until_ended(
    custom: client.CustomObjectsApi,
    namespace: str,
    name: str,
    deadline: float,
    resource_version: str | None,
) -> dict[str, Any]:
    """The run's last state, read from a watch: a run pruned right after it ended (a short
    historyLimit) is still seen ending, which reading it again and again could miss."""
    shown = _Shown()
    while time.monotonic() < deadline:
        if resource_version is None:
            try:
                pi = cast(
                    dict[str, Any],
                    custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name),
                )
            except ApiException as error:
                raise CommandError(api_message(error)) from None
            if shown.show(pi):
                return pi
            resource_version = pi["metadata"]["resourceVersion"]
        stream = watch.Watch().stream(  # type: ignore[no-untyped-call]  # untyped library
            custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            field_selector=f"metadata.name={name}",
            resource_version=resource_version,
            timeout_seconds=max(1, min(60, int(deadline - time.monotonic()))),
        )
        try:
            for event in stream:
                pi = cast(dict[str, Any], event["object"])
                if event["type"] == "DELETED":
                    raise CommandError(f"processinstance {name} was deleted before it ended")
                resource_version = pi["metadata"]["resourceVersion"]
                if shown.show(pi):
                    return pi
        except ApiException as error:
            if error.status != 410:  # 410: the watch fell too far behind; read afresh
                raise CommandError(api_message(error)) from None
            resource_version = None
    raise CommandError(f"processinstance {name} did not end within the timeout")


def _transition_line(t: dict[str, Any]) -> str:
    return f"  {t.get('field', 'state')}: {t.get('from') or '(none)'} -> {t.get('to')}"


def _call_line(c: dict[str, Any]) -> str:
    message = f": {c['message']}" if c.get("message") else ""
    return (
        f"  {c.get('phase')} {c.get('handler')} (attempt {c.get('attempt')}): "
        f"{c.get('outcome')}{message}"
    )
