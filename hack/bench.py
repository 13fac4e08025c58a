"""`make bench`: Kattle's throughput against the API server's own write ceiling.

On a fresh local control plane, in one run (so the ratios hold on a noisy machine):

1. the ceiling: PATCHes per second of the API server on objects of a generated kind, from
   the operator's own HTTP client (aiohttp) at the operator's concurrency;
2. for each size N and each variant (one no-op webhook handler, no handlers): N objects run
   `create`, then a manual process each. Reported: wall time, runs/s, latency from request
   to done (p50/p95/p99), API requests per run by verb (kube-apiserver's
   `apiserver_request_total`, the benchmark's own requests taken out), operator CPU seconds
   and peak RSS;
3. the efficiency: Kattle's runs/s against the ceiling divided by the minimum writes a run
   needs (see MINIMUM_WRITES);
4. idle latency: single manual runs one after another, with one no-op handler.

Prints a table and writes every figure as JSON (default: bench-results/latest.json).

    python hack/bench.py [--sizes 100 1000 10000] [--concurrency 200] [--out PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from kattle.kube.client import Credentials, Kind, KubeClient
from kattle.machine.names import owner_reference
from kattle.runner.history import RESOURCE_LABEL, TYPE_LABEL

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "hack"))
import bench_related  # noqa: E402  (the related-runs part, next to this one)
import controlplane  # noqa: E402  (a stdlib-only script next to this one)

GROUP = "kattle.dev"
TYPE_GROUP = "resources.kattle.dev"
NAMESPACE = "bench"
CEILING_NAMESPACE = "bench-ceiling"
PROCESS_INSTANCES = Kind(GROUP, "v1alpha1", "processinstances", namespaced=True)
# A manual run needs, at the least: the request (creating the ProcessInstance), the object
# into its transitioning state (which also claims it, by compare-and-set), the object into
# its done state, and the run's record. Kattle also posts one Event as the run ends.
MINIMUM_WRITES = 4
# A run with no logic goes from start to done in its one compare-and-set (Cattle's "simply
# update the state and be done"): one write fewer.
MINIMUM_WRITES_NO_LOGIC = 3


@dataclass
class Phase:
    """One measured batch of runs."""

    runs: int
    seconds: float
    latencies_ms: list[float] = field(repr=False)
    requests: dict[str, float]
    cpu_seconds: dict[str, float]  # by process: kube-apiserver, etcd, operator, benchmark
    failed: int

    @property
    def runs_per_second(self) -> float:
        return self.runs / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    def summary(self) -> dict[str, Any]:
        writes = sum(
            v
            for k, v in self.requests.items()
            if k.split()[0] in ("POST", "PATCH", "PUT", "DELETE")
        )
        return {
            "runs": self.runs,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
            "runs_per_second": round(self.runs_per_second, 1),
            "latency_ms": {
                "p50": round(self.percentile(50), 1),
                "p95": round(self.percentile(95), 1),
                "p99": round(self.percentile(99), 1),
            },
            "requests_per_run": {k: round(v, 2) for k, v in sorted(self.requests.items())},
            "writes_per_run": round(writes, 2),
            "operator_cpu_seconds": round(self.cpu_seconds.get("operator", 0.0), 2),
            "cpu_ms_per_run": {
                k: round(v * 1000 / self.runs, 2) for k, v in self.cpu_seconds.items()
            },
        }


# -- plumbing -----------------------------------------------------------------------------


def credentials(kubeconfig: Path) -> Credentials:
    config = json.loads(kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    user = config["users"][0]["user"]
    return Credentials(
        server=cluster["server"],
        ca_pem=base64.b64decode(cluster["certificate-authority-data"]),
        cert_pem=base64.b64decode(user["client-certificate-data"]),
        key_pem=base64.b64decode(user["client-key-data"]),
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def request_counts(kube: KubeClient) -> Counter[str]:
    """kube-apiserver's request counter as "VERB resource", for what the operator touches:
    Kattle's kinds, the generated kinds, and Events (writes too, with a cost of their own)."""
    text = await kube.raw("/metrics")
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels, _, value = line.rpartition(" ")
        label = dict(
            part.split("=", 1) for part in labels[len("apiserver_request_total{") : -1].split(",")
        )
        group = label.get("group", '""').strip('"')
        resource = label.get("resource", '""').strip('"')
        if group in (GROUP, TYPE_GROUP) or resource == "events":
            if group == TYPE_GROUP:
                resource = "objects"
            subresource = label.get("subresource", '""').strip('"')
            if subresource:
                resource += f"/{subresource}"
            counts[f"{label['verb'].strip(chr(34))} {resource}"] += int(float(value))
    return counts


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds of each process on the machine's side of a measurement: where the two
    cores went. The benchmark's own process includes the no-op handler it serves."""

    def __init__(self, plane: Any, operator_pid: int | None = None) -> None:
        self.pids = {
            name: pid for name, pid in plane.pids().items() if name in ("etcd", "kube-apiserver")
        }
        if operator_pid is not None:
            self.pids["operator"] = operator_pid
        self.pids["benchmark"] = os.getpid()

    def read(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def since(self, before: dict[str, float]) -> dict[str, float]:
        return {name: value - before[name] for name, value in self.read().items()}


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


HANDLER_CALLS: list[float] = []  # when the no-op handler was called (wall clock): bench_trace.py


@contextlib.asynccontextmanager
async def noop_handler() -> AsyncIterator[str]:
    """A webhook that answers `{}` at once: the handler's own cost is near zero."""

    async def reply(_: web.Request) -> web.Response:
        HANDLER_CALLS.append(time.time())
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/{path:.*}", reply)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/noop"
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def operator(
    kubeconfig: Path, log: Path, concurrency: int, *flags: str
) -> Iterator[subprocess.Popen[bytes]]:
    kattle = [str(Path(sys.executable).parent / "kattle")]
    profile = os.environ.get("KATTLE_BENCH_PROFILE")
    if profile:  # where the operator's time goes: cProfile output for pstats or snakeviz
        kattle = [sys.executable, "-m", "cProfile", "-o", profile, kattle[0]]
    memory = os.environ.get("KATTLE_BENCH_TRACEMALLOC")
    if memory:  # where the operator's memory goes: the top allocation sites at exit
        kattle = [sys.executable, "-c", TRACEMALLOC_WRAPPER, memory]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *kattle,
                "operator",
                f"--kubeconfig={kubeconfig}",
                f"--namespace={NAMESPACE}",
                f"--max-active-runs={concurrency}",
                "--log-format=full",  # time-stamped lines, for a look at the log afterwards
                *flags,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


async def bounded(concurrency: int, jobs: list[Any]) -> list[Any]:
    gate = asyncio.Semaphore(concurrency)

    async def one(job: Any) -> Any:
        async with gate:
            return await job

    return await asyncio.gather(*(one(j) for j in jobs))


TRACEMALLOC_WRAPPER = """
import atexit, sys, threading, time, tracemalloc
tracemalloc.start(3)
out = sys.argv.pop(1)
peak = [0, None]
def watch():  # keeps the snapshot taken nearest the peak: the peak is what RSS shows
    while True:
        time.sleep(2)
        current = tracemalloc.get_traced_memory()[0]
        if current > peak[0]:
            peak[0], peak[1] = current, tracemalloc.take_snapshot()
threading.Thread(target=watch, daemon=True).start()
def dump():
    with open(out, "w") as f:
        for title, snapshot in (("at the peak", peak[1]), ("at exit", tracemalloc.take_snapshot())):
            if snapshot is None:
                continue
            stats = snapshot.statistics("lineno")
            total = sum(s.size for s in stats) / 2**20
            f.write(f"== {title}: {total:.1f} MiB traced ==\\n")
            f.writelines(f"{s}\\n" for s in stats[:30])
atexit.register(dump)
sys.argv[0] = "kattle"
from kattle.cli.main import main
sys.exit(main())
"""


# -- the definitions under test -------------------------------------------------------------


def definitions(type_name: str, handler_url: str | None) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "ResourceDefinition",
            "metadata": {"name": type_name},
            "spec": {
                "names": {"kind": type_name.capitalize(), "plural": f"{type_name}s"},
                "initialState": "requested",
                "historyLimit": 2,
            },
        },
        {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "ProcessDefinition",
            "metadata": {"name": f"{type_name}.create"},
            "spec": {
                "resourceType": type_name,
                "trigger": "create",
                "start": ["requested"],
                "transitioning": "creating",
                "done": "ready",
            },
        },
        {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "ProcessDefinition",
            "metadata": {"name": f"{type_name}.poke"},
            "spec": {
                "resourceType": type_name,
                "start": ["ready"],
                "transitioning": "poking",
                "done": "ready",
            },
        },
    ]
    if handler_url:
        docs.append(
            {
                "apiVersion": f"{GROUP}/v1alpha1",
                "kind": "ProcessHandler",
                "metadata": {"name": f"{type_name}-noop"},
                "spec": {
                    "processes": [f"{type_name}.create", f"{type_name}.poke"],
                    "clientConfig": {"url": handler_url, "allowInsecureHTTP": True},
                },
            }
        )
    return docs


class Cluster:
    """The benchmark's view of the control plane: kubectl for set-up, aiohttp for load."""

    def __init__(self, plane: Any, kube: KubeClient, cache: Path) -> None:
        self.plane = plane
        self.kube = kube
        self.cache = cache

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            [
                str(self.plane.bin_dir / "kubectl"),
                f"--kubeconfig={self.plane.kubeconfig}",
                f"--cache-dir={self.cache}",
                *args,
            ],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def apply(self, docs: list[dict[str, Any]]) -> None:
        self.kubectl(
            "apply",
            "--server-side",
            "-f",
            "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}),
        )

    def wait_ready(self, type_name: str) -> None:
        self.kubectl("wait", "--for=condition=Ready", "--timeout=120s", f"rd/{type_name}")

    def controller_kubeconfig(self, name: str) -> Path:
        """A kubeconfig for a controller, which authenticates as it would in a cluster: with
        a ServiceAccount's token (RBAC-bound to cluster-admin). The API server caches a
        token's verification; an admin's client certificate it verifies on every request,
        15 to 18% of its CPU in the peers' workload (a CPU profile, 2026-12-06), a cost a
        deployed controller does not pay."""
        self.kubectl("create", "serviceaccount", name, "-n", NAMESPACE)
        self.kubectl(
            "create",
            "clusterrolebinding",
            name,
            "--clusterrole=cluster-admin",
            f"--serviceaccount={NAMESPACE}:{name}",
        )
        token = self.kubectl("create", "token", name, "-n", NAMESPACE, "--duration=24h")
        config = json.loads(self.plane.kubeconfig.read_text())
        config["users"][0]["user"] = {"token": token.strip()}
        path: Path = self.plane.kubeconfig.with_name(f"{name}.kubeconfig")
        path.write_text(json.dumps(config))
        path.chmod(0o600)
        return path


def object_kind(type_name: str) -> Kind:
    return Kind(TYPE_GROUP, "v1", f"{type_name}s", namespaced=True)


# -- measurements -----------------------------------------------------------------------------


async def measure_ceiling(
    cluster: Cluster, meter: CpuMeter, concurrency: int, patches: int
) -> dict[str, Any]:
    """Status PATCHes on objects of a generated kind in a namespace no operator serves."""
    kind = object_kind("benchceiling")
    objects = [f"c{i}" for i in range(concurrency)]
    await bounded(
        concurrency,
        [
            cluster.kube.create(
                kind,
                {"apiVersion": f"{TYPE_GROUP}/v1", "kind": "Benchceiling", "metadata": {"name": n}},
                CEILING_NAMESPACE,
            )
            for n in objects
        ],
    )

    async def patch(i: int) -> None:
        await cluster.kube.patch(
            kind,
            objects[i % len(objects)],
            {"status": {"state": f"s{i}"}},
            namespace=CEILING_NAMESPACE,
            subresource="status",
        )

    started, cpu = time.monotonic(), meter.read()
    await bounded(concurrency, [patch(i) for i in range(patches)])
    seconds = time.monotonic() - started
    return {
        "patches": patches,
        "seconds": round(seconds, 3),
        "patches_per_second": round(patches / seconds, 1),
        "cpu_ms_per_patch": {k: round(v * 1000 / patches, 3) for k, v in meter.since(cpu).items()},
    }


class RunWatcher:
    """Watches ProcessInstances and notes when each one ended, without polling."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        # run name -> (when it ended, phase, object name, process)
        self.ended: dict[str, tuple[float, str, str, str]] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        listed = await self.kube.request("GET", PROCESS_INSTANCES.path(NAMESPACE))
        for item in listed.get("items", []):
            self._see(item)
        version = listed["metadata"]["resourceVersion"]
        self._task = asyncio.create_task(self._watch(version))

    async def _watch(self, version: str) -> None:
        while True:
            async for event in self.kube.watch(PROCESS_INSTANCES.path(NAMESPACE), version):
                obj = event["object"]
                version = obj["metadata"].get("resourceVersion", version)
                if event["type"] in ("ADDED", "MODIFIED"):
                    self._see(obj)

    def _see(self, pi: dict[str, Any]) -> None:
        phase = (pi.get("status") or {}).get("phase")
        name = pi["metadata"]["name"]
        if phase in ("Succeeded", "Failed", "Canceled") and name not in self.ended:
            spec = pi["spec"]
            self.ended[name] = (time.monotonic(), phase, spec["resource"]["name"], spec["process"])
            self._changed.set()

    async def wait(self, done: Any, within: float) -> None:
        deadline = time.monotonic() + within
        while not done():
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("runs did not finish in time")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 5))

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def measure_batch(
    cluster: Cluster,
    watcher: RunWatcher,
    meter: CpuMeter,
    type_name: str,
    n: int,
    concurrency: int,
    objects: dict[str, dict[str, Any]],
    *,
    manual: bool,
) -> Phase:
    """N create runs (objects created) or N manual runs (ProcessInstances created)."""
    kind = object_kind(type_name)
    names = [f"o{i}" for i in range(n)]
    created = objects.setdefault(type_name, {})
    before, cpu_before = await request_counts(cluster.kube), meter.read()
    requested: dict[str, float] = {}
    ended_before = set(watcher.ended)

    async def create_object(name: str) -> None:
        requested[name] = time.monotonic()
        body = {
            "apiVersion": f"{TYPE_GROUP}/v1",
            "kind": type_name.capitalize(),
            "metadata": {"name": name},
        }
        created[name] = await cluster.kube.create(kind, body, NAMESPACE)

    async def create_run(name: str) -> None:
        body = manual_run(type_name, created[name])
        requested[name] = time.monotonic()
        await cluster.kube.create(PROCESS_INSTANCES, body, NAMESPACE)

    started = time.monotonic()
    await bounded(concurrency, [(create_run if manual else create_object)(x) for x in names])

    def mine() -> list[tuple[float, str, str, str]]:
        return [
            v
            for k, v in watcher.ended.items()
            if k not in ended_before and v[2] in requested and v[3].startswith(f"{type_name}.")
        ]

    await watcher.wait(lambda: len(mine()) >= n, within=max(120.0, n * 0.5))
    seconds = max(v[0] for v in mine()) - started
    after, cpu = await request_counts(cluster.kube), meter.since(cpu_before)
    delta = after - before
    # The benchmark's own creates are the users' requests: counted for manual runs (the run
    # request is one of its writes), not for create runs (the object is not the run's).
    if not manual:
        delta["POST objects"] -= n
    return Phase(
        runs=n,
        seconds=seconds,
        latencies_ms=[(t - requested[r]) * 1000 for t, _, r, _ in mine()],
        requests={verb: count / n for verb, count in delta.items() if count > 0},
        cpu_seconds=cpu,
        failed=sum(1 for _, phase, _, _ in mine() if phase != "Succeeded"),
    )


def manual_run(type_name: str, obj: dict[str, Any], verb: str = "poke") -> dict[str, Any]:
    """A ProcessInstance as `kattle run` makes it: labelled and owned by its object."""
    meta = obj["metadata"]
    return {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "ProcessInstance",
        "metadata": {
            "generateName": f"{meta['name']}.{verb}-",
            "labels": {TYPE_LABEL: type_name, RESOURCE_LABEL: meta["name"]},
            "ownerReferences": [owner_reference(obj)],
        },
        "spec": {
            "process": f"{type_name}.{verb}",
            "resource": {"name": meta["name"], "uid": meta["uid"]},
        },
    }


async def warm_up(cluster: Cluster, watcher: RunWatcher, type_name: str) -> None:
    """One object through its create run: the operator watches the new kind from then on."""
    body = {
        "apiVersion": f"{TYPE_GROUP}/v1",
        "kind": type_name.capitalize(),
        "metadata": {"name": "warm-up"},
    }
    await cluster.kube.create(object_kind(type_name), body, NAMESPACE)
    await watcher.wait(
        lambda: any(
            r == "warm-up" and p == f"{type_name}.create" for _, _, r, p in watcher.ended.values()
        ),
        within=120,
    )


async def measure_idle(
    cluster: Cluster, watcher: RunWatcher, type_name: str, obj: dict[str, Any], runs: int
) -> dict[str, Any]:
    """One manual run at a time on an idle system: the latency a user feels."""
    latencies = []
    for _ in range(runs):
        started = time.monotonic()
        created = await cluster.kube.create(
            PROCESS_INSTANCES, manual_run(type_name, obj), NAMESPACE
        )
        name = created["metadata"]["name"]
        await watcher.wait(lambda name=name: name in watcher.ended, within=30)
        latencies.append((watcher.ended[name][0] - started) * 1000)
    ordered = sorted(latencies)
    return {
        "runs": runs,
        "latency_ms": {
            "p50": round(statistics.median(ordered), 1),
            "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
        },
    }


VARIANTS = ("one_handler", "no_handlers", "related")

# -- the run ----------------------------------------------------------------------------------


async def measure_sizes(
    cluster: Cluster,
    watcher: RunWatcher,
    pid: int,
    url: str,
    args: argparse.Namespace,
    results: dict[str, Any],
) -> None:
    objects: dict[str, dict[str, Any]] = {}
    meter = CpuMeter(cluster.plane, pid)
    ceiling_runs = results["ceiling"]["patches_per_second"] / MINIMUM_WRITES
    if "related" in args.variants:
        print(f"related runs: {args.related_parents} parents x 10 children", file=sys.stderr)
        results["related"] = await bench_related.measure(
            sys.modules[__name__], cluster, watcher, meter, args.related_parents
        )
    for n in args.sizes:
        for variant, handler in (("one_handler", url), ("no_handlers", None)):
            if variant not in args.variants:
                continue
            type_name = f"b{n}{'h' if handler else 'n'}"
            floor = MINIMUM_WRITES if handler else MINIMUM_WRITES_NO_LOGIC
            cluster.apply(definitions(type_name, handler))
            cluster.wait_ready(type_name)
            await warm_up(cluster, watcher, type_name)
            phases = {}
            for phase, manual in (("create", False), ("manual", True)):
                print(f"N={n} {variant}: {phase} runs", file=sys.stderr)
                phases[phase] = await measure_batch(
                    cluster, watcher, meter, type_name, n, args.concurrency, objects, manual=manual
                )
            results["sizes"].setdefault(str(n), {})[variant] = {
                "create": phases["create"].summary(),
                "manual": phases["manual"].summary(),
                "manual_efficiency": round(
                    phases["manual"].runs_per_second / (ceiling_runs * MINIMUM_WRITES / floor), 3
                ),
                # The high-water mark so far, with every object of the earlier batches still
                # there: the operator's memory for that many objects and their runs.
                "objects_held": sum(len(o) for o in objects.values()),
                "operator_peak_rss_mb": round(peak_rss_mb(pid), 1),
            }
    if "one_handler" not in args.variants:
        return
    idle_type = f"b{args.sizes[0]}h"
    print("idle latency", file=sys.stderr)
    results["idle_manual_run_one_handler"] = await measure_idle(
        cluster, watcher, idle_type, objects[idle_type]["o0"], args.idle_runs
    )


async def bench(args: argparse.Namespace, bin_dir: Path) -> dict[str, Any]:
    state = Path(tempfile.mkdtemp(prefix="kattle-bench-"))
    plane = controlplane.ControlPlane(
        state, bin_dir, controller_manager=False, die_with_parent=True
    )
    print(f"starting a control plane in {state}", file=sys.stderr)
    plane.up()
    kube = KubeClient(credentials(plane.kubeconfig), pool_size=args.concurrency)
    cluster = Cluster(plane, kube, state / "kubectl-cache")
    results: dict[str, Any] = {
        "concurrency": args.concurrency,
        "minimum_writes_per_run": MINIMUM_WRITES,
        "machine": {"cpus": os.cpu_count()},
        "sizes": {},
    }
    try:
        cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        for namespace in (NAMESPACE, CEILING_NAMESPACE):
            cluster.kubectl("create", "namespace", namespace)
        async with noop_handler() as url:
            log = state / "operator.log"
            config = cluster.controller_kubeconfig("kattle-operator")
            with operator(config, log, args.concurrency, *args.operator_flag) as process:
                cluster.apply(definitions("benchceiling", None))
                cluster.wait_ready("benchceiling")
                print("measuring the ceiling", file=sys.stderr)
                results["ceiling"] = await measure_ceiling(
                    cluster, CpuMeter(plane, process.pid), args.concurrency, args.ceiling_patches
                )
                watcher = RunWatcher(kube)
                await watcher.start()
                try:
                    await measure_sizes(cluster, watcher, process.pid, url, args, results)
                finally:
                    await watcher.stop()
                results["operator_peak_rss_mb"] = round(peak_rss_mb(process.pid), 1)
    finally:
        await kube.close()
        plane.down(keep_state=args.keep)
    return results


def report(results: dict[str, Any]) -> str:
    ceiling = results["ceiling"]
    lines = [
        f"ceiling: {ceiling['patches_per_second']} PATCH/s at concurrency {results['concurrency']}"
        f" -> at most {ceiling['patches_per_second'] / MINIMUM_WRITES:.0f} runs/s"
        f" ({MINIMUM_WRITES} writes per run at the least)",
        "",
        f"{'N':>6} {'variant':<12} {'phase':<7} {'runs/s':>8} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'p99 ms':>8} {'writes/run':>10} {'cpu s':>7} {'failed':>6} {'efficiency':>10}",
    ]
    for n, variants in results["sizes"].items():
        for variant, phases in variants.items():
            for phase in ("create", "manual"):
                s = phases[phase]
                efficiency = f"{phases['manual_efficiency']:.0%}" if phase == "manual" else ""
                lines.append(
                    f"{n:>6} {variant:<12} {phase:<7} {s['runs_per_second']:>8} "
                    f"{s['latency_ms']['p50']:>8} {s['latency_ms']['p95']:>8} "
                    f"{s['latency_ms']['p99']:>8} {s['writes_per_run']:>10} "
                    f"{s['operator_cpu_seconds']:>7} {s['failed']:>6} {efficiency:>10}"
                )
    idle = results.get("idle_manual_run_one_handler")
    if idle:
        lines += [
            "",
            f"idle manual run, one handler: p50 {idle['latency_ms']['p50']} ms, "
            f"p95 {idle['latency_ms']['p95']} ms over {idle['runs']} runs (where the time "
            "goes: hack/bench_trace.py)",
        ]
    lines.append(f"operator peak RSS: {results['operator_peak_rss_mb']} MB")
    for n, variants in results["sizes"].items():
        for variant, phases in variants.items():
            lines.append(
                f"  after N={n} {variant}: {phases['operator_peak_rss_mb']} MB"
                f" with {phases['objects_held']} objects held"
            )
    if "related" in results:
        lines += ["", *bench_related.report(results["related"])]
    lines += ["", *cpu_report(results)]
    first: dict[str, Any] = next(iter(results["sizes"].values()), {})
    for variant, phases in first.items():
        requests = ", ".join(f"{k} {v}" for k, v in phases["manual"]["requests_per_run"].items())
        lines.append(f"requests per manual run ({variant}): {requests}")
    return "\n".join(lines) + "\n"


SERVER = ("kube-apiserver", "etcd")


def cpu_report(results: dict[str, Any]) -> list[str]:
    """Where the cores went: per ceiling PATCH, and per manual run. `server x` is the API
    server's and etcd's CPU for a run over that of the minimum writes at the ceiling: what a
    run costs the server beyond its writes (watches fanning every write out, Events)."""
    per_patch = results["ceiling"].get("cpu_ms_per_patch")
    if not per_patch:
        return []
    server_patch = sum(per_patch.get(k, 0.0) for k in SERVER)
    names = ["kube-apiserver", "etcd", "operator", "benchmark"]
    lines = [
        "CPU ms          " + "".join(f"{n:>15}" for n in names) + f"{'server x':>10}",
        "ceiling PATCH   " + "".join(f"{per_patch.get(n, 0.0):>15.2f}" for n in names),
    ]
    for n, variants in results["sizes"].items():
        for variant, phases in variants.items():
            per_run = phases["manual"].get("cpu_ms_per_run", {})
            server_run = sum(per_run.get(k, 0.0) for k in SERVER)
            factor = server_run / (MINIMUM_WRITES * server_patch) if server_patch else 0.0
            label = f"run N={n} {variant[:3]}"
            lines.append(
                f"{label:<16}"
                + "".join(f"{per_run.get(name, 0.0):>15.2f}" for name in names)
                + f"{factor:>10.2f}"
            )
    return lines


def add_operator_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--operator-flag",
        action="append",
        default=[],
        metavar="FLAG",
        help="a flag for `kattle operator`, e.g. --operator-flag=--events=warnings (repeatable)",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[100, 1000], help="objects per batch"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=64,
        help="requests in flight: the ceiling's, the benchmark's, the operator's run slots",
    )
    parser.add_argument(
        "--ceiling-patches", type=int, default=5000, help="PATCHes timed for the ceiling"
    )
    parser.add_argument(
        "--idle-runs", type=int, default=30, help="single runs timed on an idle system"
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=VARIANTS,
        default=list(VARIANTS),
        help="which batches to run (default: all; related runs once, not per size)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "bench-results" / "latest.json",
        help="where the figures go, as JSON (default: bench-results/latest.json)",
    )
    parser.add_argument(
        "--related-parents",
        type=int,
        default=20,
        help="parents (each with 10 children) in the related-runs batch",
    )
    add_operator_flag(parser)
    parser.add_argument("--keep", action="store_true", help="keep the control plane's folder")
    args = parser.parse_args()
    results = asyncio.run(bench(args, controlplane.binaries_dir()))
    sys.stdout.write(report(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nfigures written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
