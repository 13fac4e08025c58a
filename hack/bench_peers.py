"""`make bench`, part two: Kattle against a plain Kopf operator on the peers' own workload.

The workload: N objects of one custom kind created at once (default 1,000), each to end
with `status.state: ready` and a value returned by one no-op webhook call. Kattle does it
with a create-trigger process and one ProcessHandler (the value comes back in the reply's
`status`); the peer is hack/peer_kopf.py, the way a user would write the job with Kopf
alone. The systems alternate, each round on a fresh control plane of its own, so the
ratios printed hold on a shared, noisy machine: objects/s, API writes per object by verb,
API server (kube-apiserver + etcd) and controller CPU ms per object, controller peak RSS.

    python hack/bench_peers.py [--objects 1000] [--rounds 2] [--out PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from aiohttp import web

from kattle.kube.client import Kind, KubeClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "hack"))
import bench  # noqa: E402  (the first part: its plumbing is shared)
import controlplane  # noqa: E402

PEER_GROUP = "peers.bench.kattle.dev"
KATTLE_TYPE = "widget"
# Kattle as installed (every run recorded, an Event for each), Kattle quiet (every run
# recorded, the operator with `--events=warnings`), Kattle lean (the create process with
# `record: OnFailure` too), and the peer.
SYSTEMS = ("kattle", "kattle-quiet", "kattle-lean", "kopf")
LABELS = {
    "kattle": "Kattle",
    "kattle-quiet": "Kattle quiet",
    "kattle-lean": "Kattle lean",
    "kopf": "plain Kopf",
}
WRITE_VERBS = ("POST", "PATCH", "PUT", "DELETE", "APPLY")
VALUE = "42"


def peer_crd() -> dict[str, Any]:
    """The peer's kind: what a user would write for the job, status as a subresource."""
    loose = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{PEER_GROUP}"},
        "spec": {
            "group": PEER_GROUP,
            "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": loose, "status": loose},
                        }
                    },
                }
            ],
        },
    }


def kattle_definitions(handler_url: str, record: str) -> list[dict[str, Any]]:
    """The same job in Kattle: a type, its create process, one handler."""
    api = f"{bench.GROUP}/v1alpha1"
    return [
        {
            "apiVersion": api,
            "kind": "ResourceDefinition",
            "metadata": {"name": KATTLE_TYPE},
            "spec": {
                "names": {"kind": "Widget", "plural": "widgets"},
                "initialState": "requested",
            },
        },
        {
            "apiVersion": api,
            "kind": "ProcessDefinition",
            "metadata": {"name": f"{KATTLE_TYPE}.create"},
            "spec": {
                "resourceType": KATTLE_TYPE,
                "trigger": "create",
                "start": ["requested"],
                "transitioning": "creating",
                "done": "ready",
                "record": record,
            },
        },
        {
            "apiVersion": api,
            "kind": "ProcessHandler",
            "metadata": {"name": f"{KATTLE_TYPE}-value"},
            "spec": {
                "processes": [f"{KATTLE_TYPE}.create"],
                "clientConfig": {"url": handler_url, "allowInsecureHTTP": True},
            },
        },
    ]


def widget_kind(system: str) -> Kind:
    if system == "kopf":
        return Kind(PEER_GROUP, "v1", "widgets", namespaced=True)
    return bench.object_kind(KATTLE_TYPE)


@contextlib.asynccontextmanager
async def value_handler() -> AsyncIterator[str]:
    """The no-op webhook: Kopf's peer reads `value`, Kattle's handler reply sets it."""

    async def kopf_reply(_: web.Request) -> web.Response:
        return web.json_response({"value": VALUE})

    async def kattle_reply(_: web.Request) -> web.Response:
        return web.json_response({"status": {"value": VALUE}})

    app = web.Application()
    app.router.add_post("/kopf", kopf_reply)
    app.router.add_post("/kattle", kattle_reply)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = bench.free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def kopf_operator(kubeconfig: Path, log: Path, url: str) -> Iterator[subprocess.Popen[bytes]]:
    kopf = Path(sys.executable).parent / "kopf"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(kopf),
                "run",
                "--standalone",
                "-n",
                bench.NAMESPACE,
                str(ROOT / "hack/peer_kopf.py"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "KUBECONFIG": str(kubeconfig), "PEER_HANDLER_URL": f"{url}/kopf"},
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


class DoneWatcher:
    """Watches the workload's kind and notes when each object is ready with its value."""

    def __init__(self, kube: KubeClient, kind: Kind) -> None:
        self.kube, self.kind = kube, kind
        self.done: dict[str, float] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        path = self.kind.path(bench.NAMESPACE)
        listed = await self.kube.request("GET", path)
        for item in listed.get("items", []):
            self._see(item)
        self._task = asyncio.create_task(self._watch(path, listed["metadata"]["resourceVersion"]))

    async def _watch(self, path: str, version: str) -> None:
        while True:
            async for event in self.kube.watch(path, version):
                obj = event["object"]
                version = obj["metadata"].get("resourceVersion", version)
                if event["type"] in ("ADDED", "MODIFIED"):
                    self._see(obj)

    def _see(self, obj: dict[str, Any]) -> None:
        status = obj.get("status") or {}
        name = obj["metadata"]["name"]
        if status.get("state") == "ready" and status.get("value") == VALUE:
            self.done.setdefault(name, time.monotonic())
            self._changed.set()

    async def wait(self, names: list[str], within: float) -> None:
        deadline = time.monotonic() + within
        while any(n not in self.done for n in names):
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                missing = [n for n in names if n not in self.done]
                raise TimeoutError(f"{len(missing)} objects not ready, e.g. {missing[:5]}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 5))

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def all_requests(kube: KubeClient) -> Counter[str]:
    """Every request kube-apiserver counted, as "VERB resource[/subresource]", except its own
    lease renewals (no controller's doing)."""
    counts: Counter[str] = Counter()
    for line in (await kube.raw("/metrics")).splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels, _, value = line.rpartition(" ")
        label = {
            k: v.strip('"')
            for k, v in (
                p.split("=", 1) for p in labels[len("apiserver_request_total{") : -1].split(",")
            )
        }
        resource = label.get("resource", "")
        if not resource or resource == "leases":
            continue
        if label.get("subresource"):
            resource += f"/{label['subresource']}"
        counts[f"{label['verb']} {resource}"] += int(float(value))
    return counts


@contextlib.contextmanager
def controller(
    system: str, cluster: bench.Cluster, url: str, state: Path, concurrency: int
) -> Iterator[subprocess.Popen[bytes]]:
    """The system's kinds installed and its controller running, ready for objects."""
    if system == "kopf":
        cluster.apply([peer_crd()])
        cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        config = cluster.controller_kubeconfig("kopf-peer")
        with kopf_operator(config, state / "kopf.log", url) as process:
            yield process
        return
    lean = system == "kattle-lean"
    cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    flags = ["--events=warnings"] if system != "kattle" else []
    log = state / "operator.log"
    config = cluster.controller_kubeconfig("kattle-operator")
    with bench.operator(config, log, concurrency, *flags) as process:
        cluster.apply(kattle_definitions(f"{url}/kattle", "OnFailure" if lean else "Always"))
        cluster.wait_ready(KATTLE_TYPE)
        yield process


async def measure_workload(
    cluster: bench.Cluster, system: str, pid: int, n: int, concurrency: int
) -> dict[str, Any]:
    kind = widget_kind(system)
    api_version = f"{kind.group}/v1"
    watcher = DoneWatcher(cluster.kube, kind)
    await watcher.start()

    async def create(name: str) -> None:
        body = {"apiVersion": api_version, "kind": "Widget", "metadata": {"name": name}}
        await cluster.kube.create(kind, body, bench.NAMESPACE)

    try:
        # One object first: the controller has seen the kind and is warm.
        await create("warm-up")
        await watcher.wait(["warm-up"], within=120)
        meter = bench.CpuMeter(cluster.plane, pid)
        names = [f"w{i}" for i in range(n)]
        before, cpu_before = await all_requests(cluster.kube), meter.read()
        started = time.monotonic()
        await bench.bounded(concurrency, [create(name) for name in names])
        await watcher.wait(names, within=max(120.0, n * 0.5))
        seconds = max(watcher.done[name] for name in names) - started
        delta = (await all_requests(cluster.kube)) - before
        cpu = meter.since(cpu_before)
    finally:
        await watcher.stop()
    delta["POST widgets"] -= n  # the benchmark's own creates: the users' objects
    per_object = {k: round(v / n, 2) for k, v in sorted(delta.items())}
    requests = {k: v for k, v in per_object.items() if v > 0}  # not the server's own reads
    return {
        "objects": n,
        "seconds": round(seconds, 3),
        "objects_per_second": round(n / seconds, 1),
        "requests_per_object": requests,
        "writes_per_object": round(
            sum(v for k, v in requests.items() if k.split()[0] in WRITE_VERBS), 2
        ),
        "server_cpu_ms_per_object": round((cpu["kube-apiserver"] + cpu["etcd"]) * 1000 / n, 2),
        "controller_cpu_ms_per_object": round(cpu["operator"] * 1000 / n, 2),
        "controller_peak_rss_mb": round(bench.peak_rss_mb(pid), 1),
    }


async def measure_system(system: str, args: argparse.Namespace, bin_dir: Path) -> dict[str, Any]:
    """One system on a fresh control plane of its own."""
    state = Path(tempfile.mkdtemp(prefix=f"kattle-peers-{system}-"))
    plane = controlplane.ControlPlane(
        state, bin_dir, controller_manager=False, die_with_parent=True
    )
    plane.up()
    kube = KubeClient(bench.credentials(plane.kubeconfig), pool_size=args.concurrency)
    cluster = bench.Cluster(plane, kube, state / "kubectl-cache")
    try:
        cluster.kubectl("create", "namespace", bench.NAMESPACE)
        async with value_handler() as url:
            with controller(system, cluster, url, state, args.concurrency) as process:
                return await measure_workload(
                    cluster, system, process.pid, args.objects, args.concurrency
                )
    finally:
        await kube.close()
        plane.down(keep_state=args.keep)


async def compare(args: argparse.Namespace, bin_dir: Path) -> dict[str, Any]:
    rounds: list[dict[str, Any]] = []
    for index in range(args.rounds):
        # Forward, then backward: no system always runs first on a machine that warms or
        # cools.
        systems = tuple(args.systems)
        order = systems if index % 2 == 0 else systems[::-1]
        figures = {}
        for system in order:
            print(f"round {index + 1}: {system}, {args.objects} objects", file=sys.stderr)
            figures[system] = await measure_system(system, args, bin_dir)
        rounds.append(figures)
    return {
        "objects": args.objects,
        "systems": list(args.systems),
        "rounds": rounds,
        "median": medians(rounds, args.systems),
    }


MEDIAN_FIELDS = (
    "objects_per_second",
    "writes_per_object",
    "server_cpu_ms_per_object",
    "controller_cpu_ms_per_object",
    "controller_peak_rss_mb",
)


def medians(rounds: list[dict[str, Any]], systems: list[str]) -> dict[str, dict[str, float]]:
    return {
        system: {
            name: round(statistics.median(r[system][name] for r in rounds), 2)
            for name in MEDIAN_FIELDS
        }
        for system in systems
    }


def report(results: dict[str, Any]) -> str:
    median, systems = results["median"], results["systems"]
    kopf = median.get("kopf")
    ours = [s for s in systems if s != "kopf"] if kopf else []
    lines = [
        f"peers: {results['objects']} objects created at once, one webhook call each "
        f"(median of {len(results['rounds'])} rounds, systems alternating, fresh control planes)",
        f"{'':<26}"
        + "".join(f"{LABELS[s]:>13}" for s in systems)
        + "".join(f"{LABELS[s] + '/Kopf':>18}" for s in ours),
    ]
    labels = {
        "objects_per_second": "objects/s",
        "writes_per_object": "API writes per object",
        "server_cpu_ms_per_object": "API server CPU ms/object",
        "controller_cpu_ms_per_object": "controller CPU ms/object",
        "controller_peak_rss_mb": "controller peak RSS MB",
    }
    for name, label in labels.items():
        ratios = [median[s][name] / kopf[name] if kopf and kopf[name] else 0.0 for s in ours]
        lines.append(
            f"{label:<26}"
            + "".join(f"{median[s][name]:>13}" for s in systems)
            + "".join(f"{r:>17.2f}x" for r in ratios)
        )
    for index, figures in enumerate(results["rounds"], 1):
        for system in systems:
            requests = ", ".join(
                f"{k} {v}" for k, v in figures[system]["requests_per_object"].items()
            )
            lines.append(
                f"  round {index} {system}: {figures[system]['objects_per_second']} objects/s; "
                f"per object: {requests}"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1000, help="objects per round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each system")
    parser.add_argument(
        "--concurrency", type=int, default=64, help="creates in flight; Kattle's run slots"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "bench-results" / "peers.json",
        help="where the figures go, as JSON (default: bench-results/peers.json)",
    )
    parser.add_argument(
        "--systems",
        nargs="+",
        choices=SYSTEMS,
        default=list(SYSTEMS),
        help="which systems to run (default: all; the ratios need kopf)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the control planes' folders")
    args = parser.parse_args()
    results = asyncio.run(compare(args, controlplane.binaries_dir()))
    sys.stdout.write(report(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nfigures written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
