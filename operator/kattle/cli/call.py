"""`kattle call URL`: send one ProcessEvent to a handler and print its reply, validated.

The development loop without a cluster: run your handler on your machine, then

    kattle call http://127.0.0.1:8080/ --process instance.create --object web-1.yaml
    kattle call http://127.0.0.1:8080/ --event event.json --signing-key-file key

The event is read from a file (`--event`, JSON or YAML, as docs/protocol.md shows it) or
built from `--process`, `--phase`, the object (`--object`, e.g. `kubectl get ... -o yaml`)
and `--data`. It is signed as the operator signs it when given the key. The reply is
checked as the operator checks it, and printed; the exit code says how it went: 0 success,
1 an error reply (or a 4xx/5xx answer), 2 no valid reply at all.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from kattle.api.webhook import MAX_REPLY_BYTES, ProcessEvent, ProcessReply
from kattle.cli.kube import CommandError
from kattle.sdk.testing import event as built_event
from kattle.webhooks.cloudevents import binary_headers
from kattle.webhooks.signing import sign


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "call",
        help="send a ProcessEvent to a handler and print its reply, validated (no cluster)",
        description=(__doc__ or "").split("\n\n")[0],
        epilog="Exit code: 0 the reply is a success, 1 an error reply, 2 no valid reply.",
    )
    parser.add_argument("url", help="the handler, e.g. http://127.0.0.1:8080/")
    parser.add_argument("--event", metavar="FILE", help="the ProcessEvent, JSON or YAML")
    parser.add_argument("--process", help="with no --event: the process, e.g. instance.create")
    parser.add_argument(
        "--phase", choices=["pre", "handler", "post"], default="handler", help="(default: handler)"
    )
    parser.add_argument("--object", metavar="FILE", help="the object, as `kubectl get -o yaml`")
    parser.add_argument("--data", default="{}", help="process data, as JSON")
    parser.add_argument("--signing-key-file", metavar="FILE", help="sign as the operator does")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds (default: 10)")
    parser.set_defaults(handler=run)


def _event(args: argparse.Namespace) -> ProcessEvent:
    try:
        if args.event:
            return ProcessEvent.model_validate(yaml.safe_load(Path(args.event).read_text()))
        if not args.process:
            raise CommandError("give --event FILE, or --process (and --object) to build one")
        obj: dict[str, Any] = yaml.safe_load(Path(args.object).read_text()) if args.object else {}
        meta = obj.get("metadata") or {}
        event = built_event(
            args.process,
            phase=args.phase,
            name=meta.get("name", "test-object"),
            uid=meta.get("uid", "00000000-0000-4000-8000-000000000001"),
            spec=obj.get("spec") or {},
            data=json.loads(args.data),
        )
        if obj:
            event.resource = obj
        return event
    except ValidationError as error:
        raise CommandError(f"not a valid ProcessEvent: {error}") from None
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise CommandError(f"cannot read the input: {error}") from None


def _post(args: argparse.Namespace, event: ProcessEvent) -> tuple[int, bytes]:
    body = json.dumps(event.to_wire()).encode()
    headers = {"Content-Type": "application/json", **binary_headers(event)}
    if args.signing_key_file:
        headers.update(sign(Path(args.signing_key_file).read_bytes(), body, event.idempotency_key))
    request = urllib.request.Request(args.url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as response:
            return int(response.status), response.read(MAX_REPLY_BYTES + 1)
    except urllib.error.HTTPError as error:
        return int(error.code), error.read(MAX_REPLY_BYTES + 1)


def run(args: argparse.Namespace) -> int:
    event = _event(args)
    try:
        status, raw = _post(args, event)
    except (urllib.error.URLError, TimeoutError) as error:
        print(f"kattle call: no answer from {args.url}: {error}", file=sys.stderr)
        return 2
    try:
        reply = ProcessReply.model_validate_json(raw)
    except ValidationError as error:
        print(f"kattle call: HTTP {status}, not a valid ProcessReply: {error}", file=sys.stderr)
        return 2
    shown = reply.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    sys.stdout.write(yaml.safe_dump(shown, sort_keys=False))
    if status >= 400 or reply.error:
        print(f"kattle call: HTTP {status}, error: {reply.error}", file=sys.stderr)
        return 1
    return 0
