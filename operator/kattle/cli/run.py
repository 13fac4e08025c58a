"""`kattle run PROCESS KIND/NAME`: starts a manual process and, with --wait, follows it."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from kattle.api.common import GROUP, VERSION
from kattle.api.processinstance import FINAL_PHASES

PLURAL = "processinstances"


class CommandError(Exception):
    """Ends the command with a one-line reason and exit code 1."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "run",
        help="run a manual process on an object, e.g. `kattle run instance.start instance/web`",
        description="Create a ProcessInstance that runs PROCESS on the object KIND/NAME.",
    )
    parser.add_argument("process", help="the process, e.g. instance.start")
    parser.add_argument("target", help="KIND/NAME of the object (kind, plural or short name)")
    parser.add_argument(
        "-n", "--namespace", help="the object's namespace (default: the context's, or default)"
    )
    parser.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="input data for the handlers (repeatable; VALUE may be JSON)",
    )
    parser.add_argument(
        "--wait", action="store_true", help="follow the run to its end; exit 1 unless it succeeds"
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait with --wait (default: 300)"
    )
    add_connection_flags(parser)
    parser.set_defaults(handler=run)


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG)")
    parser.add_argument("--context", help="kubeconfig context to use")


def api_client(args: argparse.Namespace) -> tuple[client.ApiClient, str]:
    """A client for the chosen kubeconfig and context, and that context's namespace."""
    try:
        contexts, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=args.kubeconfig
        )
        chosen = (
            next((c for c in contexts if c["name"] == args.context), active)
            if args.context
            else active
        )
        namespace = (chosen or {}).get("context", {}).get("namespace") or "default"
        api = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=args.kubeconfig, context=args.context
        )
        return api, namespace
    except config.ConfigException as error:
        raise CommandError(f"no usable kubeconfig: {error}") from None


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
    kind, sep, name = args.target.partition("/")
    if not sep or not kind or not name:
        raise CommandError(f"{args.target!r}: expected KIND/NAME, e.g. instance/web-1")
    if args.process.count(".") != 1:
        raise CommandError(f"{args.process!r}: a process is named <type>.<verb>")
    api, context_namespace = api_client(args)
    namespace = args.namespace or context_namespace
    custom = client.CustomObjectsApi(api)
    resource = _resource_definition(custom, args.process.partition(".")[0])
    names = resource["spec"]["names"]
    accepted = {
        names["kind"].lower(),
        names["plural"],
        names.get("singular") or "",
        *names.get("shortNames", []),
    } - {""}
    if kind.lower() not in accepted:
        raise CommandError(f"{args.process} runs on {names['kind']} objects, not {kind!r}")
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ProcessInstance",
        "metadata": {"generateName": f"{name[:200]}.{args.process.partition('.')[2]}-"},
        "spec": {
            "process": args.process,
            "resource": {"name": name},
            "data": parse_data(args.data),
        },
    }
    try:
        created = cast(
            dict[str, Any],
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body),
        )
    except ApiException as error:
        raise CommandError(_api_message(error)) from None
    run_name = created["metadata"]["name"]
    print(f"processinstance.{GROUP}/{run_name} created")
    if not args.wait:
        return 0
    return follow(custom, namespace, run_name, args.timeout)


def follow(custom: client.CustomObjectsApi, namespace: str, name: str, timeout: float) -> int:
    """Prints each transition and handler call as the run records them, until it ends."""
    deadline = time.monotonic() + timeout
    shown_transitions = shown_calls = 0
    last_phase = None
    while time.monotonic() < deadline:
        try:
            pi = cast(
                dict[str, Any],
                custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name),
            )
        except ApiException as error:
            raise CommandError(_api_message(error)) from None
        status = pi.get("status") or {}
        phase = status.get("phase")
        if phase != last_phase and phase not in FINAL_PHASES and phase:
            note = f": {status['message']}" if status.get("message") else ""
            print(f"{phase}{note}")
            last_phase = phase
        calls = status.get("handlerCalls") or []
        transitions = status.get("transitions") or []
        events = [("t", t) for t in transitions[shown_transitions:]] + [
            ("c", c) for c in calls[shown_calls:]
        ]
        events.sort(key=lambda e: e[1].get("time") or e[1].get("start") or "")
        for what, entry in events:
            print(_transition_line(entry) if what == "t" else _call_line(entry))
        shown_transitions, shown_calls = len(transitions), len(calls)
        if phase in FINAL_PHASES:
            exit_reason = status.get("exitReason") or ""
            message = f": {status['message']}" if status.get("message") else ""
            print(f"{phase} ({exit_reason}){message}")
            return 0 if phase == "Succeeded" else 1
        time.sleep(0.25)
    raise CommandError(f"processinstance {name} did not end within {timeout:.0f}s")


def _transition_line(t: dict[str, Any]) -> str:
    return f"  {t.get('field', 'state')}: {t.get('from') or '(none)'} -> {t.get('to')}"


def _call_line(c: dict[str, Any]) -> str:
    message = f": {c['message']}" if c.get("message") else ""
    return (
        f"  {c.get('phase')} {c.get('handler')} (attempt {c.get('attempt')}): "
        f"{c.get('outcome')}{message}"
    )


def _resource_definition(custom: client.CustomObjectsApi, type_name: str) -> dict[str, Any]:
    try:
        return cast(
            dict[str, Any],
            custom.get_cluster_custom_object(GROUP, VERSION, "resourcedefinitions", type_name),
        )
    except ApiException as error:
        if error.status == 404:
            raise CommandError(f"no ResourceDefinition named {type_name!r}") from None
        raise CommandError(_api_message(error)) from None


def _api_message(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "")["message"])
    except (ValueError, KeyError, TypeError):
        return f"{error.status} {error.reason}"
