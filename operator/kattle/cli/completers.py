"""What to complete, from what the cluster has: argcomplete completers for each argument.

The candidates are computed by pure functions over definitions and names
(`process_candidates`, `target_candidates`), tested without a cluster; the completers only
read the lists they need, with the connection flags typed so far, and never more than
`lookup_seconds` a request (kattle.cli.completion bounds them as a whole too).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from kubernetes import client, config

from kattle.cli.dot import DEFINITIONS
from kattle.cli.history import RUN_NAMES
from kattle.cli.kube import Kattle, api_client, names_of


@dataclass(frozen=True)
class Kind:
    """A kind a target may name: as shown (`instance`), every name it answers to
    (`instance`, `instances`, `in`), and how to list the names of its objects."""

    shown: str
    aliases: frozenset[str]
    names: Callable[[], list[str]]


def process_candidates(prefix: str, definitions: Sequence[dict[str, Any]]) -> list[str]:
    return sorted(name for d in definitions if (name := d["metadata"]["name"]).startswith(prefix))


def resource_kinds(
    definitions: Sequence[dict[str, Any]], objects: Callable[[dict[str, Any]], list[str]]
) -> list[Kind]:
    """One Kind per ResourceDefinition, shown by its kind in lower case as kubectl types it."""
    return [
        Kind(d["spec"]["names"]["kind"].lower(), frozenset(names_of(d)), partial(objects, d))
        for d in definitions
    ]


def target_candidates(prefix: str, kinds: Sequence[Kind]) -> list[str]:
    """KIND/NAME completion: kinds (`instance/`) until a `/` is typed, then that kind's
    objects, under the kind as typed (`instances/web-1` after `instances/`)."""
    kind, slash, start = prefix.partition("/")
    if not slash:
        return sorted({f"{k.shown}/" for k in kinds if k.shown.startswith(prefix.lower())})
    for candidate in kinds:
        if kind.lower() in candidate.aliases:
            return sorted(f"{kind}/{name}" for name in candidate.names() if name.startswith(start))
    return []


def _names(items: list[dict[str, Any]]) -> list[str]:
    return [item["metadata"]["name"] for item in items]


def contexts(prefix: str, parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    try:
        found, _active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=getattr(parsed_args, "kubeconfig", None)
        )
    except (config.ConfigException, OSError):
        return []
    return sorted(c["name"] for c in found if c["name"].startswith(prefix))


def namespaces(
    prefix: str, parsed_args: argparse.Namespace, lookup_seconds: float, **_: Any
) -> list[str]:
    api, _namespace = api_client(parsed_args, request_timeout=lookup_seconds)
    listed = client.CoreV1Api(api).list_namespace()
    found = [n.metadata.name for n in listed.items if n.metadata and n.metadata.name]
    return sorted(name for name in found if name.startswith(prefix))


def processes(
    prefix: str, parsed_args: argparse.Namespace, lookup_seconds: float, **_: Any
) -> list[str]:
    api, _namespace = api_client(parsed_args, request_timeout=lookup_seconds)
    return process_candidates(prefix, Kattle(api).list("processdefinitions"))


def target_completer(command: str) -> Callable[..., list[str]]:
    """The completer of `command`'s KIND/NAME argument."""

    def complete(
        prefix: str, parsed_args: argparse.Namespace, lookup_seconds: float, **_: Any
    ) -> list[str]:
        api, namespace = api_client(parsed_args, request_timeout=lookup_seconds)
        kattle = Kattle(api)
        return target_candidates(prefix, _kinds(command, kattle, namespace, parsed_args))

    return complete


def _kinds(
    command: str, kattle: Kattle, namespace: str, parsed_args: argparse.Namespace
) -> list[Kind]:
    """The kinds `command` takes: runs for describe and retry, definitions too for dot, and
    for run only the kind its process runs on."""
    if command in ("describe", "retry"):

        def runs() -> list[str]:
            return _names(kattle.list("processinstances", namespace))

        return [Kind("pi", frozenset(RUN_NAMES), runs)]
    definitions = kattle.list("resourcedefinitions")
    process = getattr(parsed_args, "process", None)
    if command == "run" and process:
        definitions = [d for d in definitions if d["metadata"]["name"] == process.split(".")[0]]
    kinds = resource_kinds(definitions, lambda d: _names(kattle.objects(d, namespace)))
    if command == "dot":
        for short, plural in (("rd", "resourcedefinitions"), ("pd", "processdefinitions")):
            aliases = frozenset(a for a, p in DEFINITIONS.items() if p == plural)
            kinds.append(Kind(short, aliases, partial(lambda p: _names(kattle.list(p)), plural)))
    return kinds
