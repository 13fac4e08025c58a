"""A resource type of its own for each test, with helpers to define, run and wait.

Every test gets a fresh type (e.g. `t3f2a9c` with kind `T3f2a9c`), so tests share one
control plane and one operator without seeing each other's objects or handlers.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.support.kube import Kubectl

GROUP = "kattle.dev"
VERSION = "v1alpha1"
TEST_GROUP = "test.kattle.dev"
FINAL = {"Succeeded", "Failed", "Canceled"}


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Polls `probe` until it returns something truthy; fails with `what` and the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


class World:
    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.namespace = namespace
        suffix = uuid.uuid4().hex[:6]
        self.type = f"t{suffix}"
        self.kind = f"T{suffix}"
        self.plural = f"t{suffix}s"
        self.handlers: list[str] = []

    # -- definitions ------------------------------------------------------------------------

    def define_type(self, initial: str = "requested", **spec: Any) -> None:
        self._apply_cluster(
            "resourcedefinitions",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "ResourceDefinition",
                "metadata": {"name": self.type},
                "spec": {
                    "names": {"kind": self.kind, "plural": self.plural},
                    "group": TEST_GROUP,
                    "initialState": initial,
                    **spec,
                },
            },
        )
        wait_for(f"ResourceDefinition {self.type} Ready", self._type_ready)

    def _type_ready(self) -> bool:
        rd = self.custom.get_cluster_custom_object(GROUP, VERSION, "resourcedefinitions", self.type)
        conditions = (rd.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def process(
        self, verb: str, start: list[str], transitioning: str, done: str, **spec: Any
    ) -> str:
        return self.process_of(verb, start=start, transitioning=transitioning, done=done, **spec)

    def process_of(self, verb: str, **spec: Any) -> str:
        """A process of the test's type with any spec (e.g. a `stateMap`)."""
        name = f"{self.type}.{verb}"
        self._apply_cluster(
            "processdefinitions",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "ProcessDefinition",
                "metadata": {"name": name},
                "spec": {"resourceType": self.type, **spec},
            },
        )
        return name

    def handler(self, name: str, processes: list[str], url: str, **spec: Any) -> str:
        full = f"{self.type}-{name}"
        spec.setdefault("timeoutSeconds", 5)
        self._apply_cluster(
            "processhandlers",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "ProcessHandler",
                "metadata": {"name": full},
                "spec": {
                    "processes": processes,
                    "clientConfig": {"url": url, "allowInsecureHTTP": True},
                    **spec,
                },
            },
        )
        self.handlers.append(full)
        return full

    def wait_handler(self, name: str) -> dict[str, Any]:
        """Waits until the operator has acted on the handler's current spec; its status."""

        def observed() -> dict[str, Any] | None:
            ph = self.custom.get_cluster_custom_object(GROUP, VERSION, "processhandlers", name)
            status: dict[str, Any] = ph.get("status") or {}
            seen = status.get("observedGeneration") == ph["metadata"]["generation"]
            return status if seen else None

        found: dict[str, Any] = wait_for(f"the operator to observe handler {name}", observed)
        return found

    def wait_plan(self, process: str, count: int) -> None:
        """Waits until the operator has seen `count` handlers attached to `process`."""

        def seen() -> bool:
            pd = self.custom.get_cluster_custom_object(
                GROUP, VERSION, "processdefinitions", process
            )
            return len((pd.get("status") or {}).get("handlers") or []) == count

        wait_for(f"{count} handlers on {process}", seen)

    def _apply_cluster(self, plural: str, body: dict[str, Any]) -> None:
        try:
            self.custom.create_cluster_custom_object(GROUP, VERSION, plural, body)
        except ApiException as error:
            if error.status != 409:
                raise
            current = self.custom.get_cluster_custom_object(
                GROUP, VERSION, plural, body["metadata"]["name"]
            )
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            self.custom.replace_cluster_custom_object(
                GROUP, VERSION, plural, body["metadata"]["name"], body
            )

    # -- objects and runs -------------------------------------------------------------------

    def create(self, name: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = self.custom.create_namespaced_custom_object(
            TEST_GROUP,
            "v1",
            self.namespace,
            self.plural,
            {
                "apiVersion": f"{TEST_GROUP}/v1",
                "kind": self.kind,
                "metadata": {"name": name},
                "spec": spec or {},
            },
        )
        return body

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            body: dict[str, Any] = self.custom.get_namespaced_custom_object(
                TEST_GROUP, "v1", self.namespace, self.plural, name
            )
            return body
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def status(self, name: str) -> dict[str, Any]:
        return (self.get(name) or {}).get("status") or {}

    def set_status(self, name: str, status: dict[str, Any]) -> dict[str, Any]:
        """Merges `status` into the object's, as a hand-built state for a test."""
        body: dict[str, Any] = self.custom.patch_namespaced_custom_object_status(
            TEST_GROUP, "v1", self.namespace, self.plural, name, {"status": status}
        )
        return body

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(
            TEST_GROUP, "v1", self.namespace, self.plural, name
        )

    def wait_state(self, name: str, state: str, timeout: float = 30.0) -> dict[str, Any]:
        return wait_for(  # type: ignore[no-any-return]
            f"{self.kind} {name} in state {state}",
            lambda: (s := self.status(name)).get("state") == state and not s.get("activeRun") and s,
            timeout,
        )

    def run(
        self,
        process: str,
        obj: str,
        data: dict[str, Any] | None = None,
        *,
        name: str | None = None,
        **spec: Any,
    ) -> str:
        """Asks for a run; `name` names it (for hand-built states), `spec` adds fields."""
        meta = {"name": name} if name else {"generateName": f"{obj}.{process.partition('.')[2]}-"}
        body = self.custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            "processinstances",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "ProcessInstance",
                "metadata": meta,
                "spec": {
                    "process": process,
                    "resource": {"name": obj},
                    "data": data or {},
                    **spec,
                },
            },
        )
        return str(body["metadata"]["name"])

    def pi(self, name: str) -> dict[str, Any]:
        body: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "processinstances", name
        )
        return body

    def wait_run(self, name: str, timeout: float = 30.0) -> dict[str, Any]:
        """The run's status once it has ended."""
        return wait_for(  # type: ignore[no-any-return]
            f"ProcessInstance {name} to end",
            lambda: (s := self.pi(name).get("status") or {}).get("phase") in FINAL and s,
            timeout,
        )

    def runs(self, obj: str) -> list[dict[str, Any]]:
        items = self.custom.list_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            "processinstances",
            label_selector=f"kattle.dev/resource={obj},kattle.dev/type={self.type}",
        )["items"]
        return sorted(items, key=lambda i: i["metadata"]["creationTimestamp"])

    def ended_runs(self, obj: str, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The object's `count` runs once every one has ended: a run writes its record after
        its last write to the object, so an object in its done state can be seen first."""
        return wait_for(  # type: ignore[no-any-return]
            f"{count} ended runs of {obj}",
            lambda: (
                len(r := self.runs(obj)) == count
                and all((i.get("status") or {}).get("phase") in FINAL for i in r)
                and r
            ),
            timeout,
        )

    def cleanup(self) -> None:
        # Handlers use `*.verb` selectors too: leaving them would attach them to other tests.
        for name in self.handlers:
            with contextlib.suppress(ApiException):
                self.custom.delete_cluster_custom_object(GROUP, VERSION, "processhandlers", name)


@contextlib.contextmanager
def world_in(api_client: Any, kubectl: Kubectl, namespace: str) -> Iterator[World]:
    """A World in a namespace of its own, for tests that run an operator of their own."""
    kubectl.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    created = World(api_client, namespace)
    try:
        yield created
    finally:
        created.cleanup()


def event_table(kubectl: Kubectl, world: World, name: str) -> str:
    """`kubectl events` for one object, as a user would read them."""
    target = f"{world.plural}.{TEST_GROUP}/{name}"
    return kubectl.run("events", "-n", world.namespace, "--for", target).stdout


def event_reasons(kubectl: Kubectl, world: World, name: str) -> set[str]:
    # Columns: LAST SEEN, TYPE, REASON, OBJECT, MESSAGE.
    lines = event_table(kubectl, world, name).splitlines()[1:]
    return {line.split()[2] for line in lines if line.strip()}


def events_of(kubectl: Kubectl, world: World, name: str, reason: str) -> list[dict[str, Any]]:
    """The object's Events of one reason, oldest first (events.k8s.io, as posted); only
    this object's, not those of an object of the same name of another type."""
    obj = world.get(name)
    uid = obj["metadata"]["uid"] if obj else None
    listed = kubectl.get("events.events.k8s.io", "-n", world.namespace)["items"]
    found = [
        e
        for e in listed
        if e.get("reason") == reason and (e.get("regarding") or {}).get("uid") == uid
    ]
    return sorted(found, key=lambda e: e.get("eventTime") or "")
