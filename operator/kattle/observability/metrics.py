"""The operator's Prometheus metrics, in a registry of their own.

A registry per operator (not the process-wide default) keeps several operators in one
process, as in tests, from counting into each other. Labels are bounded by the definitions
(processes, handlers, states), never by objects or runs.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# From a no-op handler on loopback to a process that waits minutes on retries.
RUN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
CALL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.runs_started = Counter(
            "kattle_process_runs_started",
            "Runs admitted: the object entered the transitioning state.",
            ["process"],
            registry=r,
        )
        self.runs_finished = Counter(
            "kattle_process_runs_finished",
            "Runs that ended, by exit reason.",
            ["process", "exit_reason"],
            registry=r,
        )
        self.run_duration = Histogram(
            "kattle_process_run_duration_seconds",
            "From admission to the end of a run.",
            ["process"],
            buckets=RUN_BUCKETS,
            registry=r,
        )
        self.handler_calls = Histogram(
            "kattle_handler_call_duration_seconds",
            "Handler webhook calls, failed ones included.",
            ["handler", "phase"],
            buckets=CALL_BUCKETS,
            registry=r,
        )
        self.handler_errors = Counter(
            "kattle_handler_call_errors",
            "Failed handler calls, by why they failed.",
            ["handler", "reason"],
            registry=r,
        )
        self.transitions = Counter(
            "kattle_transitions",
            "State changes written to objects.",
            ["resource_type", "to"],
            registry=r,
        )
        self.watch_fallback_events = Counter(
            "kattle_watch_fallback_events",
            "Watch events of runs or objects that went through Kopf's queues, past the "
            "watch seam: non-zero means this Kopf release moved it (more CPU and memory).",
            ["kind"],
            registry=r,
        )
        self._gauges(r)

    def _gauges(self, r: CollectorRegistry) -> None:
        self.runs_active = Gauge("kattle_runs_active", "Runs being driven now.", registry=r)
        self.runs_queued = Gauge(
            "kattle_runs_queued",
            "Unfinished runs the operator knows of, active ones included.",
            registry=r,
        )
        self.events_queued = Gauge(
            "kattle_events_queued", "Events waiting to be posted.", registry=r
        )
        self.events_dropped = Counter(
            "kattle_events_dropped",
            "Events dropped because too many were waiting (the runs' records keep all).",
            registry=r,
        )
        self.definitions = Gauge(
            "kattle_catalog_definitions",
            "Definitions the operator knows, by kind.",
            ["kind"],
            registry=r,
        )

    def watch_scheduler(self, active: Callable[[], float], queued: Callable[[], float]) -> None:
        """Gauges read when scraped, so the scheduler needs no bookkeeping for them."""
        self.runs_active.set_function(active)
        self.runs_queued.set_function(queued)

    def watch_events(self, queued: Callable[[], float]) -> None:
        self.events_queued.set_function(queued)

    def watch_catalog(self, counts: Callable[[], dict[str, int]]) -> None:
        for kind in ("ResourceDefinition", "ProcessDefinition", "ProcessHandler"):
            self.definitions.labels(kind).set_function(_count_of(counts, kind))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _count_of(counts: Callable[[], dict[str, int]], kind: str) -> Callable[[], float]:
    return lambda: counts()[kind]
