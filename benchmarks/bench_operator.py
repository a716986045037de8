"""How fast the operator makes 1,000 ExportPipelines Ready on a real control plane.

A private cluster (tests/cluster.py; binaries built once into the cache) gets the CRDs, a
namespace with the examples' Workspace and Connection, and `sluice operator` on a SQLite store.
Then 1,000 copies of the seed pipeline are applied at once with one `kubectl apply`, and the
pipelines are polled until all are Ready. Reported: the time until all are Ready, p50/p99 of
each pipeline's apply→Ready latency (its creation time to its Ready condition's transition),
and the operator's peak resident memory. Then every pipeline is edited (its schedule, one
`kubectl apply`) until every CronJob has the new schedule, and all are deleted (one `kubectl
delete`) until every CronJob and ConfigMap is garbage-collected: the time of each phase.
Targets: all Ready within 60 s, p99 under 30 s, each later phase within 60 s, peak memory under
300 MB. Exits 1 when a target is missed.

    .venv/bin/python benchmarks/bench_operator.py
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "operator"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.cluster import Cluster, build, start
from tests.operator_process import OperatorProcess, install_crds, write_seed_copies

PIPELINES = 1_000
NAMESPACE = "marketing"
ALL_READY_SECONDS = 60.0
P99_SECONDS = 30.0
MEMORY_BYTES = 300 * 10**6
POLL_SECONDS = 0.5
#: The edit and deletion phases: every CronJob updated, then every child collected.
PHASE_SECONDS = 60.0


def edit(pipelines: Path) -> str:
    """Every pipeline's scheduleStart moved from 15 to 20 minutes past the hour, in place;
    the schedule their CronJobs must then have."""
    pipelines.write_text(pipelines.read_text().replace("scheduleStart: 15", "scheduleStart: 20"))
    return "20 * * * *"


def listed(cluster: Cluster, kind: str) -> list[dict[str, Any]]:
    found = cluster.kubectl("get", kind, "-n", NAMESPACE, "-o", "json", timeout=120).stdout
    items: list[dict[str, Any]] = json.loads(found)["items"]
    return items


def until(done: Callable[[], bool], seconds: float) -> float:
    """Seconds until ``done()``, polling; ``inf`` when it is not done within ``seconds``."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if done():
            return time.monotonic() - started
        time.sleep(POLL_SECONDS)
    return float("inf")


def ready_times(cluster: Cluster) -> dict[str, float]:
    """Each Ready pipeline's apply→Ready latency in seconds, by name."""
    listed = json.loads(
        cluster.kubectl("get", "exportpipelines", "-n", NAMESPACE, "-o", "json", timeout=120).stdout
    )
    latencies = {}
    for item in listed["items"]:
        for condition in (item.get("status") or {}).get("conditions", []):
            if condition["type"] == "Ready" and condition["status"] == "True":
                created = _moment(item["metadata"]["creationTimestamp"])
                latencies[item["metadata"]["name"]] = (
                    _moment(condition["lastTransitionTime"]) - created
                )
    return latencies


def peak_memory(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc status")


def _moment(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def main() -> int:
    binaries = build()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        cluster = start(folder / "cluster", binaries)
        operator = OperatorProcess(cluster, folder)
        try:
            install_crds(cluster)
            cluster.kubectl("create", "namespace", NAMESPACE)
            pipelines = write_seed_copies(folder, PIPELINES, NAMESPACE)
            cluster.kubectl("apply", "-f", str(folder / "workspace.yaml"))
            cluster.kubectl("apply", "-f", str(folder / "hubspot-connection.yaml"))
            operator.start()
            assert operator.process is not None
            started = time.monotonic()
            cluster.kubectl("apply", "--server-side", "-f", str(pipelines), timeout=300)
            applied_after = time.monotonic() - started
            latencies: dict[str, float] = {}
            deadline = started + 4 * ALL_READY_SECONDS
            while len(latencies) < PIPELINES and time.monotonic() < deadline:
                time.sleep(POLL_SECONDS)
                latencies = ready_times(cluster)
            all_ready_after = time.monotonic() - started

            schedule = edit(pipelines)
            started = time.monotonic()
            cluster.kubectl("apply", "--server-side", "-f", str(pipelines), timeout=300)
            edited_after = (
                time.monotonic()
                - started
                + until(
                    lambda: (
                        sum(c["spec"]["schedule"] == schedule for c in listed(cluster, "cronjobs"))
                        == PIPELINES
                    ),
                    4 * PHASE_SECONDS,
                )
            )

            started = time.monotonic()
            cluster.kubectl("delete", "exportpipelines", "--all", "-n", NAMESPACE, timeout=300)
            deleted_after = time.monotonic() - started + until(
                lambda: not listed(cluster, "cronjobs")
                and not [m for m in listed(cluster, "configmaps") if m.get("metadata", {})
                         .get("ownerReferences")],
                4 * PHASE_SECONDS,
            )  # fmt: skip
            memory = peak_memory(operator.process.pid)
        finally:
            operator.stop()
            cluster.stop()
    ready = len(latencies)
    cuts = statistics.quantiles(latencies.values(), n=100) if ready > 1 else [float("nan")] * 99
    print(f"applied {PIPELINES} ExportPipelines in {applied_after:.1f}s (one kubectl apply)")
    print(
        f"Ready: {ready}/{PIPELINES} after {all_ready_after:.1f}s (target ≤ {ALL_READY_SECONDS}s)"
    )
    print(f"apply→Ready: p50 {cuts[49]:.1f}s, p99 {cuts[98]:.1f}s (target p99 < {P99_SECONDS}s)")
    print(
        f"edited {PIPELINES} (their schedule): every CronJob updated after {edited_after:.1f}s "
        f"(target ≤ {PHASE_SECONDS}s)"
    )
    print(
        f"deleted {PIPELINES}: every CronJob and ConfigMap collected after {deleted_after:.1f}s "
        f"(target ≤ {PHASE_SECONDS}s)"
    )
    print(f"operator peak memory: {memory / 10**6:.0f} MB (target < {MEMORY_BYTES / 10**6:.0f} MB)")
    met = (
        ready == PIPELINES
        and all_ready_after <= ALL_READY_SECONDS
        and cuts[98] < P99_SECONDS
        and edited_after <= PHASE_SECONDS
        and deleted_after <= PHASE_SECONDS
        and memory < MEMORY_BYTES
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
