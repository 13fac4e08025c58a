"""Entry point of `kattle` and `kubectl kattle`: parses the command line, hands over.

Each subcommand lives in its own module; this one only wires them to argparse, so that
`kattle --help` lists everything and errors end in one line on stderr with a non-zero exit.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import argcomplete
import urllib3

from kattle.api import crds, schemas
from kattle.cli import call as call_command
from kattle.cli import completion
from kattle.cli import dot as dot_command
from kattle.cli import history as history_command
from kattle.cli import operator as operator_command
from kattle.cli import retry as retry_command
from kattle.cli import run as run_command
from kattle.cli import tree as tree_command
from kattle.cli.kube import CommandError


def _version() -> str:
    try:
        return version("kattle")
    except PackageNotFoundError:  # running from a source tree without installing
        return "unknown"


def _schemas(args: argparse.Namespace) -> int:
    for path in schemas.write_files(Path(args.write)):
        print(f"wrote {path}", file=sys.stderr)
    return 0


def _crds(args: argparse.Namespace) -> int:
    if args.write:
        for path in crds.write_files(Path(args.write)):
            print(f"wrote {path}", file=sys.stderr)
        return 0
    sys.stdout.write("---\n".join(crds.install_files().values()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kattle",
        description="Kattle: Rancher Cattle's orchestration model on Kubernetes.",
    )
    parser.add_argument("--version", action="version", version=f"kattle {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    crds_parser = commands.add_parser(
        "crds",
        help="print Kattle's CRDs and run access policy (pipe to `kubectl apply -f -`)",
        description=(
            "Print Kattle's API as YAML, generated from the API models: the CRDs and the "
            "admission policy that lets only users who may update an object start runs on it."
        ),
    )
    crds_parser.add_argument("--write", metavar="DIR", help="write one file each into DIR")
    crds_parser.set_defaults(handler=_crds)

    schemas_parser = commands.add_parser(
        "schemas",
        help="write the webhook protocol's JSON Schemas (ProcessEvent, ProcessReply)",
        description="Write the JSON Schemas of the webhook protocol, from the API models.",
    )
    schemas_parser.add_argument(
        "--write", metavar="DIR", required=True, help="the folder to write them to"
    )
    schemas_parser.set_defaults(handler=_schemas)
    operator_command.add_parser(commands)
    run_command.add_parser(commands)
    retry_command.add_parser(commands)
    history_command.add_parsers(commands)
    dot_command.add_parser(commands)
    tree_command.add_parser(commands)
    call_command.add_parser(commands)
    completion.add_parser(commands)
    completion.attach(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # Answers and exits when the shell asks for completions (bash, zsh); a no-op otherwise.
    argcomplete.autocomplete(
        parser,
        always_complete_options=completion.COMPLETE_OPTIONS,
        default_completer=completion.NOTHING,
    )
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except CommandError as error:
        print(f"kattle {args.command}: {error}", file=sys.stderr)
        return 1
    except urllib3.exceptions.HTTPError as error:
        # No answer in time (--request-timeout) or no connection: one line, as kubectl says it.
        print(f"kattle {args.command}: {_unreachable(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as error:
        print(f"kattle: {error}", file=sys.stderr)
        return 1


def _unreachable(error: urllib3.exceptions.HTTPError) -> str:
    if isinstance(error, urllib3.exceptions.TimeoutError):
        return "the server did not answer within --request-timeout"
    reason = getattr(error, "reason", None) or error
    return f"cannot reach the API server: {reason}"


if __name__ == "__main__":
    sys.exit(main())
