"""What every cluster-facing command shares: kubectl's connection flags, a client, errors.

Commands fail with a `CommandError`: `main` prints its one-line reason and exits 1, as
kubectl does, instead of a traceback.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from kattle.api.common import GROUP, VERSION


class CommandError(Exception):
    """Ends the command with a one-line reason and exit code 1."""


def add_connection_flags(parser: argparse.ArgumentParser, *, namespaced: bool = True) -> None:
    if namespaced:
        parser.add_argument(
            "-n", "--namespace", help="the object's namespace (default: the context's, or default)"
        )
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG)")
    parser.add_argument("--context", help="kubeconfig context to use")


def api_client(args: argparse.Namespace) -> tuple[client.ApiClient, str]:
    """A client for the chosen kubeconfig and context, and the namespace to use."""
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
    except config.ConfigException as error:
        raise CommandError(f"no usable kubeconfig: {error}") from None
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
