"""`kattle retry RUN`: replays a failed run from the step where it stopped.

It sets the run's `kattle.dev/replay` annotation (as a user could with kubectl) and waits for
the operator's answer in the run's `status.replay`: the replay run it started, or why not.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kattle.api.common import GROUP, VERSION
from kattle.cli.kube import (
    CommandError,
    Kattle,
    add_connection_flags,
    api_client,
    api_message,
)
from kattle.cli.run import follow
from kattle.machine.replay import REPLAY_ANNOTATION

PLURAL = "processinstances"
ANSWER_POLL_SECONDS = 0.2


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "retry",
        help="replay a failed run from the step where it stopped, e.g. `kattle retry pi/web-1.x`",
        description=(
            "Replay a failed ProcessInstance (Cattle's processinstance.replay): the operator "
            "starts a run of the same process that skips the handler steps which succeeded, "
            "if the object is still where the failed run left it. Same as setting the run's "
            f"{REPLAY_ANNOTATION} annotation to a new value."
        ),
    )
    parser.add_argument("target", metavar="RUN", help="the failed run: NAME or pi/NAME")
    parser.add_argument(
        "--wait",
        action="store_true",
        help="follow the replay to its end; exit 1 unless it succeeds",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="seconds to wait for the operator's answer, and with --wait for the replay",
    )
    add_connection_flags(parser)
    parser.set_defaults(handler=retry)


RUN_KINDS = ("pi", "processinstance", PLURAL, f"{PLURAL}.{GROUP}", f"processinstance.{GROUP}")


def run_name(target: str) -> str:
    """NAME from NAME or KIND/NAME, where KIND names ProcessInstances as kubectl would."""
    kind, sep, name = target.rpartition("/")
    example = "e.g. pi/web-1.start-x7k2p"
    if sep and kind.lower() not in RUN_KINDS:
        raise CommandError(f"{target!r}: retry replays a ProcessInstance, {example}")
    if not name:
        raise CommandError(f"{target!r}: name the run, {example}")
    return name


def retry(args: argparse.Namespace) -> int:
    name = run_name(args.target)
    api, namespace = api_client(args)
    custom = client.CustomObjectsApi(api)
    requested = datetime.now(UTC).isoformat(timespec="microseconds")
    patch = {"metadata": {"annotations": {REPLAY_ANNOTATION: requested}}}
    try:
        custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, patch)
    except ApiException as error:
        if error.status == 404:
            raise CommandError(f"processinstance {name!r} not found in {namespace}") from None
        raise CommandError(api_message(error)) from None
    answer = _answer(Kattle(api), namespace, name, requested, time.monotonic() + args.timeout)
    if answer.get("refused"):
        raise CommandError(f"{name} not replayed: {answer['refused']}")
    child = answer["run"]
    print(f"processinstance.{GROUP}/{child} replays {name}")
    if not args.wait:
        return 0
    return follow(custom, namespace, child, args.timeout)


def _answer(
    kattle: Kattle, namespace: str, name: str, requested: str, deadline: float
) -> dict[str, Any]:
    """The operator's answer to this request (a short poll: it comes within moments when
    an operator serves the namespace)."""
    while True:
        pi = kattle.get(PLURAL, name, namespace)
        answer = (pi.get("status") or {}).get("replay") or {}
        if answer.get("requested") == requested:
            return cast(dict[str, Any], answer)
        if time.monotonic() > deadline:
            raise CommandError(
                f"no answer from the operator about replaying {name}: is one running for "
                f"namespace {namespace}?"
            )
        time.sleep(ANSWER_POLL_SECONDS)
