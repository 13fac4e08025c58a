"""What every cluster-facing command shares: kubectl's connection flags, a client, errors.

The flags are kubectl's (`--kubeconfig`, `--context`, `--as`, `--as-group`, `--as-uid`,
`--request-timeout`, `-n`, `-A`) and mean what they mean there; `KubeClient` applies them to
every request in one place.

Commands fail with a `CommandError`: `main` prints its one-line reason and exits 1, as
kubectl does, instead of a traceback.
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3 import HTTPHeaderDict

from kattle.api.common import GROUP, VERSION


class CommandError(Exception):
    """Ends the command with a one-line reason and exit code 1."""


# kubectl's --request-timeout: a Go duration ("1m30s", "500ms") or whole seconds ("5").
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_request_timeout(value: str) -> float | None:
    """Seconds, or None for kubectl's "0" (no timeout); as kubectl reads the flag, a bare
    number is whole seconds and anything else a Go duration with units."""
    text = value.strip()
    if text.isdigit():
        return float(text) or None
    if not text or _DURATION_PART.sub("", text):
        raise argparse.ArgumentTypeError(
            f"invalid duration {value!r}: use 0 (none), whole seconds, or units as in 5s, 2m, 1h"
        )
    seconds = sum(
        float(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(text)
    )
    return seconds or None


def add_connection_flags(
    parser: argparse.ArgumentParser, *, namespaced: bool = True, all_namespaces: bool = False
) -> None:
    """kubectl's flags that choose the cluster, the identity and the namespace."""
    if namespaced:
        parser.add_argument(
            "-n", "--namespace", help="the object's namespace (default: the context's, or default)"
        )
    if all_namespaces:
        parser.add_argument(
            "-A",
            "--all-namespaces",
            action="store_true",
            help="list across all namespaces (a NAMESPACE column is added)",
        )
    group = parser.add_argument_group("kubectl's connection flags")
    group.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, or ~/.kube/config)"
    )
    group.add_argument("--context", help="kubeconfig context to use")
    group.add_argument("--as", dest="as_user", metavar="USER", help="user to impersonate")
    group.add_argument(
        "--as-group",
        action="append",
        default=[],
        metavar="GROUP",
        help="group to impersonate (repeatable)",
    )
    group.add_argument("--as-uid", metavar="UID", help="UID to impersonate")
    group.add_argument(
        "--request-timeout",
        type=parse_request_timeout,
        default=None,
        metavar="DURATION",
        help="give up on each server request after this long: 0 (never, the default), 5s, 1m",
    )


class KubeClient(client.ApiClient):
    """An ApiClient that applies --request-timeout and --as-group to every request, so
    commands need not pass them at each call."""

    request_timeout: float | None = None
    impersonate_groups: tuple[str, ...] = ()

    def call_api(
        self,
        method: str,
        url: str,
        header_params: dict[str, Any] | None = None,
        body: Any = None,
        post_params: Any = None,
        _request_timeout: Any = None,
    ) -> Any:
        if _request_timeout is None and self.request_timeout is not None:
            # A watch lasts as long as its own timeoutSeconds asks; bound only its connect.
            watching = "watch=true" in url.lower()
            _request_timeout = (self.request_timeout, None) if watching else self.request_timeout
        headers: Any = header_params
        if self.impersonate_groups:
            # One header line for each group, as kubectl sends them: the API server does not
            # split a comma-separated value, and a dict holds only one value a name.
            headers = HTTPHeaderDict(header_params or {})
            for group in self.impersonate_groups:
                headers.add("Impersonate-Group", group)
        return super().call_api(method, url, headers, body, post_params, _request_timeout)


def _chosen_namespace(args: argparse.Namespace) -> str:
    contexts, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
        config_file=args.kubeconfig
    )
    chosen = (
        next((c for c in contexts if c["name"] == args.context), active) if args.context else active
    )
    return str((chosen or {}).get("context", {}).get("namespace") or "default")


def api_client(
    args: argparse.Namespace, *, request_timeout: float | None = None
) -> tuple[KubeClient, str]:
    """A client for the chosen kubeconfig, context and identity, and the namespace to use.
    `request_timeout` overrides --request-timeout (completion bounds its look-ups)."""
    configuration = client.Configuration()
    try:
        namespace = _chosen_namespace(args)
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=getattr(args, "kubeconfig", None),
            context=getattr(args, "context", None),
            client_configuration=configuration,
            persist_config=False,
        )
    except (config.ConfigException, OSError) as error:
        raise CommandError(f"no usable kubeconfig: {error}") from None
    # kubectl does not retry a request that failed or timed out; a retry would multiply
    # --request-timeout.
    configuration.retries = False
    api = KubeClient(configuration=configuration)
    api.request_timeout = request_timeout or getattr(args, "request_timeout", None)
    user = getattr(args, "as_user", None)
    groups = tuple(getattr(args, "as_group", None) or ())
    uid = getattr(args, "as_uid", None)
    if (groups or uid) and not user:
        raise CommandError("--as-group and --as-uid impersonate a user: give --as too")
    if user:
        api.set_default_header("Impersonate-User", user)  # type: ignore[no-untyped-call]
        api.impersonate_groups = groups
    if uid:
        api.set_default_header("Impersonate-Uid", uid)  # type: ignore[no-untyped-call]
    return api, getattr(args, "namespace", None) or namespace


def api_message(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "")["message"])
    except (ValueError, KeyError, TypeError):
        return f"{error.status} {error.reason}"


def split_target(target: str) -> tuple[str, str]:
    kind, sep, name = target.partition("/")
    if not sep or not kind or not name:
        raise CommandError(f"{target!r}: expected KIND/NAME, e.g. instance/web-1")
    return kind, name


def names_of(resource: dict[str, Any]) -> set[str]:
    """Every way kubectl accepts to name a ResourceDefinition's kind."""
    names = resource["spec"]["names"]
    return {
        names["kind"].lower(),
        names["plural"],
        names.get("singular") or "",
        *names.get("shortNames", []),
    } - {""}


class Kattle:
    """Reads Kattle's objects for the CLI, turning API errors into one-line reasons."""

    def __init__(self, api: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api)

    def get(self, plural: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        try:
            if namespace is None:
                found = self.custom.get_cluster_custom_object(GROUP, VERSION, plural, name)
            else:
                found = self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, plural, name
                )
        except ApiException as error:
            if error.status == 404:
                raise CommandError(f"{plural} {name!r} not found") from None
            raise CommandError(api_message(error)) from None
        return cast(dict[str, Any], found)

    def objects(self, resource: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
        """The objects of a ResourceDefinition's kind (in `namespace`, if it is namespaced)."""
        spec = resource["spec"]
        group, version, plural = spec["group"], spec.get("version", "v1"), spec["names"]["plural"]
        try:
            if spec.get("scope", "Namespaced") == "Namespaced":
                found = self.custom.list_namespaced_custom_object(group, version, namespace, plural)
            else:
                found = self.custom.list_cluster_custom_object(group, version, plural)
        except ApiException as error:
            raise CommandError(api_message(error)) from None
        return cast(list[dict[str, Any]], cast(dict[str, Any], found).get("items", []))

    def list(
        self, plural: str, namespace: str | None = None, label_selector: str = ""
    ) -> list[dict[str, Any]]:
        try:
            if namespace is None:
                found = self.custom.list_cluster_custom_object(
                    GROUP, VERSION, plural, label_selector=label_selector
                )
            else:
                found = self.custom.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, plural, label_selector=label_selector
                )
        except ApiException as error:
            raise CommandError(api_message(error)) from None
        return cast(list[dict[str, Any]], cast(dict[str, Any], found).get("items", []))

    def resource_type(self, kind: str) -> dict[str, Any]:
        """The ResourceDefinition whose kind is named `kind` (kind, plural, singular or short)."""
        wanted = kind.lower()
        for resource in self.list("resourcedefinitions"):
            if wanted in names_of(resource):
                return resource
        raise CommandError(f"no ResourceDefinition defines a kind named {kind!r}")

    def object(self, resource: dict[str, Any], name: str, namespace: str) -> dict[str, Any]:
        spec = resource["spec"]
        namespaced = spec.get("scope", "Namespaced") == "Namespaced"
        group, version, plural = spec["group"], spec.get("version", "v1"), spec["names"]["plural"]
        try:
            if namespaced:
                found = self.custom.get_namespaced_custom_object(
                    group, version, namespace, plural, name
                )
            else:
                found = self.custom.get_cluster_custom_object(group, version, plural, name)
        except ApiException as error:
            if error.status == 404:
                where = f" in namespace {namespace}" if namespaced else ""
                raise CommandError(f"{spec['names']['kind']} {name!r} not found{where}") from None
            raise CommandError(api_message(error)) from None
        return cast(dict[str, Any], found)


def target_object(args: argparse.Namespace) -> tuple[Kattle, dict[str, Any], dict[str, Any]]:
    """For commands about one object (`args.target`, KIND/NAME): the client, the object's
    ResourceDefinition and the object, or a CommandError saying which is missing."""
    kind, name = split_target(args.target)
    api, namespace = api_client(args)
    kattle = Kattle(api)
    resource = kattle.resource_type(kind)
    return kattle, resource, kattle.object(resource, name, namespace)
