"""`kattle operator`: runs the Kattle operator against the current cluster."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable

import kopf

from kattle.observability import tracing
from kattle.runner.slots import DEFAULT_ACTIVE_RUNS
from kattle.wiring.app import OperatorOptions, run_operator
from kattle.wiring.kopf_version import installed_kopf, untested

LOG_FORMATS = {
    "text": kopf.LogFormat.PLAIN,
    "full": kopf.LogFormat.FULL,
    "json": kopf.LogFormat.JSON,
}


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "operator",
        help="run the operator (uses KUBECONFIG, --kubeconfig or the in-cluster account)",
        description="Run the Kattle operator: generate CRDs for ResourceDefinitions and run "
        "processes through their handler webhooks.",
    )
    parser.add_argument(
        "--kubeconfig",
        help="kubeconfig file (default: $KUBECONFIG, "
        "~/.kube/config, or the in-cluster service account)",
    )
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        dest="namespaces",
        metavar="NS",
        help="serve only these namespaces (repeatable; default: all)",
    )
    parser.add_argument(
        "--runs-namespace",
        default="default",
        metavar="NS",
        help="where runs of cluster-scoped kinds live (default: default)",
    )
    parser.add_argument(
        "--max-active-runs",
        type=_at_least(1),
        default=DEFAULT_ACTIVE_RUNS,
        metavar="N",
        help=f"runs driven at once; others queue (default: {DEFAULT_ACTIVE_RUNS})",
    )
    _add_serving_flags(parser)
    _add_logging_and_checks(parser)
    parser.set_defaults(handler=run)


def _add_serving_flags(parser: argparse.ArgumentParser) -> None:
    """How the operator shows itself, reaches handlers, shares work and logs."""
    parser.add_argument(
        "--http-address",
        metavar="HOST:PORT",
        help=(
            "serve /metrics, /healthz and /readyz here, e.g. 0.0.0.0:8080 (the Helm chart's "
            "setting; default: off)"
        ),
    )
    parser.add_argument(
        "--events",
        choices=["all", "warnings"],
        default="all",
        help=(
            "Events to post on objects: all (one as each run ends, and every warning; the "
            "default) or warnings (failures, cancellations, held deletions, and what "
            "handlers ask for): one fewer API write per run, for large installations"
        ),
    )
    parser.add_argument(
        "--service-override",
        action="append",
        default=[],
        metavar="NS/NAME=URL",
        help="call handler Service NS/NAME at URL instead of its cluster DNS "
        "name, for an operator outside the cluster (repeatable; also "
        "$KATTLE_SERVICE_OVERRIDES, comma-separated)",
    )
    parser.add_argument(
        "--peering",
        metavar="NAME",
        help=(
            "Kopf peering object for several replicas: the oldest replica is active, the "
            "others stand by (default: standalone)"
        ),
    )
    parser.add_argument(
        "--peering-lifetime",
        type=_at_least(15),
        default=30,
        metavar="SECONDS",
        help=(
            "with --peering: a replica silent this long is taken for dead and a standby "
            "takes over (default: 30; at least 15, as keepalives come 5-10 s before it ends)"
        ),
    )
    parser.add_argument(
        "--manage-crds",
        action="store_true",
        help=(
            "apply Kattle's own CRDs (those of `kattle crds`) at start-up, so that upgrading "
            "the operator upgrades them (the Helm chart's default; needs create and patch on "
            "customresourcedefinitions)"
        ),
    )
    parser.add_argument(
        "--liveness", metavar="URL", help="serve a liveness probe, e.g. http://0.0.0.0:8080/healthz"
    )


def _add_logging_and_checks(parser: argparse.ArgumentParser) -> None:
    """What the operator logs, and checks meant for development."""
    parser.add_argument(
        "--check-idempotency",
        action="store_true",
        help=(
            "call every handler step twice with the same event and fail the step, naming "
            "the differences, when the replies differ (for development and CI: it doubles "
            "every handler call)"
        ),
    )
    parser.add_argument("--log-format", choices=sorted(LOG_FORMATS), default="text")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.add_argument("--debug", action="store_true", help="log everything, Kopf included")


def _at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is less than {minimum}")
        return value

    return parse


def parse_overrides(values: list[str]) -> dict[str, str]:
    overrides = {}
    for value in values:
        target, sep, url = value.partition("=")
        if not sep or target.count("/") != 1 or not url.startswith(("http://", "https://")):
            raise SystemExit(
                f"kattle operator: --service-override {value!r}: "
                "expected NAMESPACE/NAME=http(s)://HOST:PORT"
            )
        overrides[target] = url
    return overrides


def run(args: argparse.Namespace) -> int:
    problem = untested(installed_kopf())
    if problem is not None:
        print(f"kattle operator: {problem}", file=sys.stderr)
        return 2
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig
    env = [v for v in os.environ.get("KATTLE_SERVICE_OVERRIDES", "").split(",") if v]
    options = OperatorOptions(
        runs_namespace=args.runs_namespace,
        max_active_runs=args.max_active_runs,
        run_events=args.events == "all",
        http_address=args.http_address,
        service_overrides=parse_overrides([*env, *args.service_override]),
        peering_lifetime=args.peering_lifetime,
        check_idempotency=args.check_idempotency,
        manage_crds=args.manage_crds,
    )
    tracing.configure_from_environment()
    kopf.configure(
        verbose=args.verbose,
        debug=args.debug,
        log_format=LOG_FORMATS[args.log_format],
        log_refkey="object",
    )
    if not (args.verbose or args.debug):
        # Kopf logs every watch event's handler at INFO ("Handler 'runs' succeeded."): at
        # hundreds of runs a second that is most of the log and a fair share of the CPU.
        # Kattle logs each run's start and end itself.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    asyncio.run(
        run_operator(
            options, namespaces=args.namespaces, peering=args.peering, liveness=args.liveness
        )
    )
    return 0
