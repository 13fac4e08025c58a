"""`make soak`: hours of mixed runs with faulty handlers and a crashing operator.

On a fresh local control plane, for `--seconds` (an hour by default):

- objects of one type cycle through `poke` runs (ready -> poking -> ready) and `tune` runs
  (ready -> tuning -> tuned), then `reset` (tuned -> resetting -> ready), with a
  `pre` and a main handler on each; their onError is `fix` (back to ready);
- the handlers misbehave at random: HTTP 500s, connection resets, hangs past their timeout,
  replies that are not JSON, retry-after; some runs exhaust their retries and `fix` takes
  over, as designed;
- the operator is SIGKILLed (sometimes stopped with SIGTERM) at random moments and started
  again.

Then it stops asking for runs, waits for every run to end, and prints a tally: runs done,
failed as designed, lost (must be 0: a run that never ended), duplicated transitions
(must be 0: a transition written twice in a run's log, or an object left mid-process).
Exits 1 if either is not 0.

    python hack/soak.py [--seconds 3600] [--objects 40] [--seed N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

from kattle.kube.client import ApiError, KubeClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "hack"))
import bench  # noqa: E402  (the benchmark's plumbing: the same control plane and client)
import controlplane  # noqa: E402

NAMESPACE = "soak"
TYPE = "soak"
GROUP = bench.GROUP
HANDLER_TIMEOUT = 2
# Per call: what the faulty handlers do, with these weights.
FAULTS = {
    "ok": 70,
    "http_500": 8,
    "reset": 6,
    "hang": 4,
    "not_json": 4,
    "retry_after": 4,
    "slow_ok": 4,
}
# From each process's start state to the state its run leaves the object in.
CYCLE = {"ready": ["soak.poke", "soak.tune"], "tuned": ["soak.reset"]}


def definitions(url: str) -> list[dict[str, Any]]:
    def process(verb: str, start: list[str], transitioning: str, done: str, **extra: Any) -> Any:
        spec = {"resourceType": TYPE, "start": start, "transitioning": transitioning}
        return {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "ProcessDefinition",
            "metadata": {"name": f"{TYPE}.{verb}"},
            "spec": {**spec, "done": done, **extra},
        }

    def handler(name: str, phase: str, processes: list[str]) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "ProcessHandler",
            "metadata": {"name": f"{TYPE}-{name}"},
            "spec": {
                "processes": processes,
                "phase": phase,
                "clientConfig": {"url": f"{url}/{name}", "allowInsecureHTTP": True},
                "timeoutSeconds": HANDLER_TIMEOUT,
                "retryLimit": 3,
            },
        }

    faulty = ["soak.create", "soak.poke", "soak.tune", "soak.reset"]
    return [
        {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "ResourceDefinition",
            "metadata": {"name": TYPE},
            "spec": {
                "names": {"kind": "Soak", "plural": "soaks"},
                "initialState": "requested",
                "historyLimit": 1000,
            },
        },
        process("create", ["requested"], "creating", "ready", trigger="create", onError="soak.fix"),
        process("poke", ["ready"], "poking", "ready", onError="soak.fix"),
        process("tune", ["ready"], "tuning", "tuned", onError="soak.fix"),
        process("reset", ["tuned"], "resetting", "ready", onError="soak.fix"),
        process("fix", ["creating", "poking", "tuning", "resetting"], "fixing", "ready"),
        handler("check", "pre", faulty),
        handler("work", "handler", faulty),
    ]


@contextlib.asynccontextmanager
async def faulty_handlers(rng: random.Random, tally: Counter[str]) -> AsyncIterator[str]:
    names = list(FAULTS)
    weights = list(FAULTS.values())

    async def reply(request: web.Request) -> web.StreamResponse:
        await request.read()
        fault = rng.choices(names, weights)[0]
        tally[fault] += 1
        if fault == "http_500":
            return web.json_response({"detail": "injected"}, status=500)
        if fault == "reset":
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        if fault == "hang":
            await asyncio.sleep(HANDLER_TIMEOUT + 1)
        if fault == "not_json":
            return web.Response(body=b"<html>", content_type="text/html")
        if fault == "retry_after":
            return web.json_response({"retryAfterSeconds": 1})
        if fault == "slow_ok":
            await asyncio.sleep(HANDLER_TIMEOUT * 0.6)
        return web.json_response({"data": {request.match_info["name"]: True}})

    app = web.Application()
    app.router.add_post("/{name}", reply)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    port = bench.free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


class Operator:
    """The operator process, killed and started again at random."""

    def __init__(self, kubeconfig: Path, log: Path) -> None:
        self.kubeconfig = kubeconfig
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0
        self.stops = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "kattle"),
                    "operator",
                    f"--kubeconfig={self.kubeconfig}",
                    f"--namespace={NAMESPACE}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def crash(self, rng: random.Random) -> None:
        assert self.process is not None
        if rng.random() < 0.8:
            self.process.send_signal(signal.SIGKILL)
            self.kills += 1
        else:
            self.process.send_signal(signal.SIGTERM)
            self.stops += 1
        self.process.wait(30)
        self.start()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


async def chaos(operator: Operator, rng: random.Random, until: float, mean: float) -> None:
    # The first crash comes by half-time, so even a short soak has one.
    first = True
    while True:
        pause = rng.expovariate(1 / mean)
        if first:
            pause = min(pause, (until - time.monotonic()) / 2)
            first = False
        if time.monotonic() + pause >= until:
            return
        await asyncio.sleep(pause)
        await asyncio.to_thread(operator.crash, rng)


async def drive(
    kube: KubeClient, rng: random.Random, objects: list[str], until: float, asked: set[str]
) -> None:
    """Asks for runs on idle objects: one at a time per object, from the state it is in,
    so each run can start (one that cannot ends Canceled, which is not a loss either)."""
    kind = bench.object_kind(TYPE)
    while time.monotonic() < until:
        await asyncio.sleep(rng.uniform(0.02, 0.2))
        name = rng.choice(objects)
        with contextlib.suppress(ApiError, OSError, TimeoutError):
            obj = await kube.get(kind, name, NAMESPACE)
            status = obj.get("status") or {}
            if status.get("activeRun") or status.get("transitioning") not in (None, "no"):
                continue
            choices = CYCLE.get(status.get("state", ""))
            if not choices:
                continue
            verb = rng.choice(choices).partition(".")[2]
            body = bench.manual_run(TYPE, obj, verb)
            created = await kube.create(bench.PROCESS_INSTANCES, body, NAMESPACE)
            asked.add(created["metadata"]["name"])


async def runs_of(kube: KubeClient) -> list[dict[str, Any]]:
    listed = await kube.request("GET", bench.PROCESS_INSTANCES.path(NAMESPACE))
    items: list[dict[str, Any]] = listed.get("items", [])
    return items


def duplicated(run: dict[str, Any]) -> int:
    """Transitions written more than once in one run's log."""
    seen = Counter(
        (t.get("field"), t.get("from"), t.get("to"))
        for t in (run.get("status") or {}).get("transitions", [])
    )
    return sum(count - 1 for count in seen.values())


async def soak(args: argparse.Namespace, bin_dir: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    state = Path(tempfile.mkdtemp(prefix="kattle-soak-"))
    plane = controlplane.ControlPlane(
        state, bin_dir, controller_manager=False, die_with_parent=True
    )
    print(f"starting a control plane in {state}", file=sys.stderr)
    plane.up()
    kube = KubeClient(bench.credentials(plane.kubeconfig))
    cluster = bench.Cluster(plane, kube, state / "kubectl-cache")
    operator = Operator(plane.kubeconfig, state / "operator.log")
    faults: Counter[str] = Counter()
    asked: set[str] = set()
    try:
        cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        cluster.kubectl("create", "namespace", NAMESPACE)
        async with faulty_handlers(rng, faults) as url:
            operator.start()
            cluster.apply(definitions(url))
            cluster.wait_ready(TYPE)
            objects = [f"s{i:03d}" for i in range(args.objects)]
            kind = bench.object_kind(TYPE)
            for name in objects:
                body = {
                    "apiVersion": f"{kind.group}/{kind.version}",
                    "kind": "Soak",
                    "metadata": {"name": name},
                }
                await kube.create(kind, body, NAMESPACE)
            until = time.monotonic() + args.seconds
            print(f"soaking for {args.seconds:.0f}s (seed {args.seed})", file=sys.stderr)
            await asyncio.gather(
                drive(kube, rng, objects, until, asked),
                chaos(operator, rng, until, args.restart_every),
            )
            print("draining: waiting for every run to end", file=sys.stderr)
            deadline = time.monotonic() + args.drain
            while True:
                runs = await runs_of(kube)
                open_runs = [
                    r for r in runs if (r.get("status") or {}).get("phase") not in FINAL_PHASES
                ]
                if not open_runs or time.monotonic() > deadline:
                    break
                await asyncio.sleep(2)
            objs = (await kube.request("GET", kind.path(NAMESPACE))).get("items", [])
    finally:
        operator.stop()
        await kube.close()
        plane.down(keep_state=args.keep)

    ended = Counter(
        f"{(r.get('status') or {}).get('phase')}/{(r.get('status') or {}).get('exitReason')}"
        for r in runs
        if (r.get("status") or {}).get("phase") in FINAL_PHASES
    )
    present = {r["metadata"]["name"] for r in runs}
    stuck_objects = [
        o["metadata"]["name"]
        for o in objs
        if (o.get("status") or {}).get("activeRun")
        or (o.get("status") or {}).get("transitioning") not in (None, "no")
    ]
    return {
        "seconds": args.seconds,
        "seed": args.seed,
        "objects": args.objects,
        "runs": len(runs),
        "runs_asked_for": len(asked),
        "ended": dict(sorted(ended.items())),
        "done": ended.get("Succeeded/Done", 0),
        "failed_as_designed": sum(v for k, v in ended.items() if k.startswith("Failed/")),
        "canceled": sum(v for k, v in ended.items() if k.startswith("Canceled/")),
        "lost": len(open_runs) + len(asked - present),
        "duplicated_transitions": sum(duplicated(r) for r in runs),
        # The evidence, so that a failure found after an hour can be read, not just counted.
        "duplicated_runs": [
            {
                "name": r["metadata"]["name"],
                "process": r["spec"].get("process"),
                "status": r.get("status") or {},
            }
            for r in runs
            if duplicated(r)
        ],
        "objects_left_mid_process": stuck_objects,
        "handler_faults": dict(sorted(faults.items())),
        "operator_kills": operator.kills,
        "operator_stops": operator.stops,
    }


FINAL_PHASES = {"Succeeded", "Failed", "Canceled"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=3600, help="how long to ask for runs (default: an hour)"
    )
    parser.add_argument(
        "--objects", type=int, default=40, help="objects the runs are spread over (default: 40)"
    )
    parser.add_argument(
        "--restart-every",
        type=float,
        default=60,
        metavar="SECONDS",
        help="mean time between operator crashes (default: 60)",
    )
    parser.add_argument(
        "--drain",
        type=float,
        default=600,
        metavar="SECONDS",
        help="how long to wait for runs to end once asking stops",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=random.randrange(1 << 32),
        help="of the faults and kills (printed; timing makes a rerun similar, not the same)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "soak-results" / "latest.json",
        help="where the tally goes, as JSON (default: soak-results/latest.json)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the control plane's folder")
    args = parser.parse_args()
    tally = asyncio.run(soak(args, controlplane.binaries_dir()))
    width = max(len(k) for k in tally)
    for key, value in tally.items():
        if key != "duplicated_runs":
            print(f"{key:<{width}}  {value}")
    for run in tally["duplicated_runs"]:
        print(f"\nduplicated transitions in {run['name']} ({run['process']}):")
        print(json.dumps(run["status"], indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(tally, indent=2) + "\n")
    bad = tally["lost"] or tally["duplicated_transitions"] or tally["objects_left_mid_process"]
    print("\nFAILED: runs lost or transitions duplicated" if bad else "\nOK", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
