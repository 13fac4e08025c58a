"""Where the milliseconds of one idle manual run go, part by part.

The third part of `make bench`. On a fresh local control plane of its own, whose API server
keeps an audit log: single manual runs with one no-op webhook handler, one after another.
For each request of a run the audit log says when the API server received it and when its
response was complete, so each run splits into the API server's own time for each write
and the time between writes: the client sending, watch events, the operator's own work,
the handler's call. The figure printed for each part is its median over the traced runs
(one run alone is as noisy as the machine's worst moment).

The audit log costs the API server a line per request: the split, not the total, is what
these runs are for (`hack/bench.py` measures the idle p50 on a plane without one).

    python hack/bench_trace.py [--runs 30] [--operator-flag=--events=warnings]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kattle.kube.client import KubeClient

# The benchmark's plumbing and the control plane, next to this script.
sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench
import controlplane

TYPE = "traced"
WRITES = ("create", "update", "patch")
# Not traced: the first runs open the operator's and the handler's connections.
WARM_RUNS = 2


@dataclass(frozen=True)
class TracedRun:
    """One run as the benchmark saw it (wall clock, seconds)."""

    name: str
    requested: float  # the benchmark sent the request
    seen: float  # the benchmark's watch saw the run ended
    called: float  # the handler was called


@dataclass(frozen=True)
class Step:
    """One part of a run: a write in the API server, or the time between two writes."""

    label: str
    ms: float
    server: bool


def _stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def audited_writes(audit_log: Path) -> list[tuple[float, float, str]]:
    """(received, complete, `VERB resource[/subresource]`) of every write the API server
    answered. Deletes are left out: pruning old records runs beside a run, not on its way."""
    writes = []
    for line in audit_log.read_text().splitlines():
        event = json.loads(line)
        if event.get("stage") != "ResponseComplete" or event.get("verb") not in WRITES:
            continue
        ref = event.get("objectRef") or {}
        resource = ref.get("resource", "?") + (
            f"/{ref['subresource']}" if ref.get("subresource") else ""
        )
        writes.append(
            (
                _stamp(event["requestReceivedTimestamp"]),
                _stamp(event["stageTimestamp"]),
                f"{event['verb'].upper()} {resource}",
            )
        )
    return sorted(writes)


def steps(run: TracedRun, writes: list[tuple[float, float, str]]) -> list[Step]:
    """The run's writes in order, with the time between them; the handler's call splits
    the time between the two writes around it."""
    mine = [w for w in writes if run.requested <= w[0] <= run.seen]
    found: list[Step] = []
    before, previous = run.requested, "the benchmark"
    for received, complete, label in mine:
        if before < run.called < received:
            found.append(Step(f"{previous} to the handler's call", _ms(run.called - before), False))
            before, previous = run.called, "the handler's call"
        found.append(Step(f"{previous} to {label}", _ms(received - before), False))
        found.append(Step(f"{label} in the API server", _ms(complete - received), True))
        before, previous = complete, label
    found.append(Step(f"{previous} to the benchmark's watch", _ms(run.seen - before), False))
    return found


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def medians(runs: list[list[Step]]) -> dict[str, Any]:
    """Each part's median over the runs of the most common shape (a run whose record was
    pruned, or that raced a retry, has other writes and is left out)."""
    shapes = Counter(tuple(s.label for s in run) for run in runs)
    if not shapes:
        return {}
    shape, count = shapes.most_common(1)[0]
    same = [run for run in runs if tuple(s.label for s in run) == shape]
    parts = [
        {
            "part": label,
            "ms": round(statistics.median(run[i].ms for run in same), 1),
            "api_server": same[0][i].server,
        }
        for i, label in enumerate(shape)
    ]
    totals = [sum(s.ms for s in run) for run in same]
    server = [sum(s.ms for s in run if s.server) for run in same]
    return {
        "runs": count,
        "parts": parts,
        "total_ms": round(statistics.median(totals), 1),
        "api_server_ms": round(statistics.median(server), 1),
    }


async def trace_runs(cluster: bench.Cluster, runs: int) -> list[TracedRun]:
    watcher = bench.RunWatcher(cluster.kube)
    await watcher.start()
    try:
        await bench.warm_up(cluster, watcher, TYPE)
        obj = await cluster.kube.get(bench.object_kind(TYPE), "warm-up", bench.NAMESPACE)
        traced = []
        for _ in range(runs + WARM_RUNS):
            requested = time.time()
            created = await cluster.kube.create(
                bench.PROCESS_INSTANCES, bench.manual_run(TYPE, obj), bench.NAMESPACE
            )
            name = created["metadata"]["name"]
            await watcher.wait(lambda name=name: name in watcher.ended, within=30)
            seen = time.time() - (time.monotonic() - watcher.ended[name][0])
            traced.append(TracedRun(name, requested, seen, bench.HANDLER_CALLS[-1]))
        return traced[WARM_RUNS:]
    finally:
        await watcher.stop()


async def trace(runs: int, flags: list[str], bin_dir: Path) -> dict[str, Any]:
    state = Path(tempfile.mkdtemp(prefix="kattle-trace-"))
    plane = controlplane.ControlPlane(
        state, bin_dir, controller_manager=False, die_with_parent=True, audit=True
    )
    print(f"starting a control plane with an audit log in {state}", file=sys.stderr)
    plane.up()
    kube = KubeClient(bench.credentials(plane.kubeconfig), pool_size=8)
    cluster = bench.Cluster(plane, kube, state / "kubectl-cache")
    try:
        cluster.kubectl("apply", "--server-side", "-f", str(bench.ROOT / "crds"))
        cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        cluster.kubectl("create", "namespace", bench.NAMESPACE)
        async with bench.noop_handler() as url:
            config = cluster.controller_kubeconfig("kattle-operator")
            with bench.operator(config, state / "operator.log", 8, *flags):
                cluster.apply(bench.definitions(TYPE, url))
                cluster.wait_ready(TYPE)
                traced = await trace_runs(cluster, runs)
        writes = audited_writes(plane.audit_log)
        return medians([steps(run, writes) for run in traced])
    finally:
        await kube.close()
        plane.down()


def report(result: dict[str, Any]) -> str:
    if not result:
        return "no run traced\n"
    lines = [
        f"one idle manual run, one no-op handler: where the time goes (each part's median "
        f"over {result['runs']} runs of the same shape)",
    ]
    lines += [
        f"  {'[API server] ' if p['api_server'] else ''}{p['part']}: {p['ms']} ms"
        for p in result["parts"]
    ]
    lines.append(
        f"  total {result['total_ms']} ms, of which the API server's own time for the writes "
        f"{result['api_server_ms']} ms"
    )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="runs traced")
    bench.add_operator_flag(parser)
    parser.add_argument(
        "--out",
        type=Path,
        default=bench.ROOT / "bench-results" / "trace.json",
        help="where the figures go, as JSON (default: bench-results/trace.json)",
    )
    args = parser.parse_args()
    result = asyncio.run(trace(args.runs, args.operator_flag, controlplane.binaries_dir()))
    sys.stdout.write(report(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
