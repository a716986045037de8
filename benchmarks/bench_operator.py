"""How fast the operator makes 1,000 ExportPipelines Ready on a real control plane.

A private cluster (tests/cluster.py; binaries built once into the cache) gets the CRDs, a
namespace with the examples' Workspace and Connection, and `sluice operator` on a SQLite store.
Then 1,000 copies of the seed pipeline are applied at once with one `kubectl apply`, and the
pipelines are polled until all are Ready. Reported: the time until all are Ready, p50/p99 of
each pipeline's apply→Ready latency (its creation time to its Ready condition's transition),
and the operator's peak resident memory. Then every pipeline is edited (its schedule, one
`kubectl apply`) until every CronJob has the new schedule, and all are deleted (one `kubectl
delete`) until every CronJob and ConfigMap is garbage-collected: the time of each phase.

Sluice adds no finalizer, so the deletion is paced by `kubectl delete` (one object at a time,
at its client's request rate) and by the controller manager's garbage collector, which deletes
the children: the cluster's, not Sluice's. So the collection is compared with a baseline in the
same cluster: copies of the same CronJobs and ConfigMaps owned by 1,000 plain ConfigMaps,
deleted the same way.

Targets: all Ready within 60 s, p99 under 30 s, every CronJob edited within 60 s, the children
collected within 1.25× the baseline's time, peak memory under 300 MB. Exits 1 when a target is
missed.

    .venv/bin/python benchmarks/bench_operator.py
"""

from __future__ import annotations

import argparse
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
#: The edit phase: every CronJob updated.
PHASE_SECONDS = 60.0
#: The deletion phase: children collected within this many times the baseline's collection.
COLLECTION_RATIO = 1.25
#: The baseline's owners and their children's copies live here.
BASELINE_NAMESPACE = "baseline"
OWNER_LABEL = "bench.sluice.dev/owner"
#: The garbage collector learns of a new CRD when it next reads the API's discovery (every 30 s);
#: until then it collects the children of deleted custom resources only on slow retries.
GARBAGE_COLLECTOR_DISCOVERY_SECONDS = 35.0


def edit(pipelines: Path) -> str:
    """Every pipeline's scheduleStart moved from 15 to 20 minutes past the hour, in place;
    the schedule their CronJobs must then have."""
    pipelines.write_text(pipelines.read_text().replace("scheduleStart: 15", "scheduleStart: 20"))
    return "20 * * * *"


def listed(cluster: Cluster, kind: str, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    found = cluster.kubectl("get", kind, "-n", namespace, "-o", "json", timeout=120).stdout
    items: list[dict[str, Any]] = json.loads(found)["items"]
    return items


def children(cluster: Cluster, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """The namespace's CronJobs and the ConfigMaps that have an owner."""
    owned = [
        m for m in listed(cluster, "configmaps", namespace) if m["metadata"].get("ownerReferences")
    ]
    return listed(cluster, "cronjobs", namespace) + owned


def collected(cluster: Cluster, started: float, namespace: str = NAMESPACE) -> float:
    """Seconds from ``started`` until the namespace's children are all gone."""
    return (
        time.monotonic()
        - started
        + until(lambda: not children(cluster, namespace), 4 * PHASE_SECONDS)
    )


def baseline_collection(cluster: Cluster, folder: Path, copied: list[dict[str, Any]]) -> float:
    """Seconds to collect copies of ``copied`` (a pipeline's CronJob and ConfigMap each)
    owned by plain ConfigMaps, two per owner, once their owners are deleted at once."""
    cluster.kubectl("create", "namespace", BASELINE_NAMESPACE)
    owner_count = len(copied) // 2
    owners = [
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": f"owner-{i}", "namespace": BASELINE_NAMESPACE,
                      "labels": {OWNER_LABEL: "true"}}}
        for i in range(owner_count)
    ]  # fmt: skip
    apply_list(cluster, folder / "owners.json", owners)
    uids = {
        m["metadata"]["name"]: m["metadata"]["uid"]
        for m in listed(cluster, "configmaps", BASELINE_NAMESPACE)
    }
    copies = []
    for index, child in enumerate(copied):
        owner = f"owner-{index % owner_count}"
        reference = {"apiVersion": "v1", "kind": "ConfigMap", "name": owner, "uid": uids[owner],
                     "controller": True, "blockOwnerDeletion": True}  # fmt: skip
        copy = {
            "apiVersion": child["apiVersion"],
            "kind": child["kind"],
            "metadata": {"name": f"{owner}-{child['kind'].lower()}",
                         "namespace": BASELINE_NAMESPACE, "ownerReferences": [reference]},
            **{k: v for k, v in child.items() if k in ("spec", "data")},
        }  # fmt: skip
        if "spec" in copy:
            copy["spec"] = {**copy["spec"], "suspend": True}  # the copies never run
        copies.append(copy)
    apply_list(cluster, folder / "owned.json", copies)
    started = time.monotonic()
    cluster.kubectl(
        "delete", "configmaps", "-l", OWNER_LABEL, "-n", BASELINE_NAMESPACE, timeout=300
    )
    return collected(cluster, started, BASELINE_NAMESPACE)


def apply_list(cluster: Cluster, path: Path, items: list[dict[str, Any]]) -> None:
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    cluster.kubectl("apply", "--server-side", "-f", str(path), timeout=600)


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
    latencies = {}
    for item in listed(cluster, "exportpipelines"):
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", type=int, default=PIPELINES)
    count = parser.parse_args().pipelines
    binaries = build()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        cluster = start(folder / "cluster", binaries)
        operator = OperatorProcess(cluster, folder)
        try:
            install_crds(cluster)
            crds_installed = time.monotonic()
            cluster.kubectl("create", "namespace", NAMESPACE)
            pipelines = write_seed_copies(folder, count, NAMESPACE)
            cluster.kubectl("apply", "-f", str(folder / "workspace.yaml"))
            cluster.kubectl("apply", "-f", str(folder / "hubspot-connection.yaml"))
            operator.start()
            assert operator.process is not None
            started = time.monotonic()
            cluster.kubectl("apply", "--server-side", "-f", str(pipelines), timeout=300)
            applied_after = time.monotonic() - started
            latencies: dict[str, float] = {}
            deadline = started + 4 * ALL_READY_SECONDS
            while len(latencies) < count and time.monotonic() < deadline:
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
                        == count
                    ),
                    4 * PHASE_SECONDS,
                )
            )

            time.sleep(
                max(0.0, crds_installed + GARBAGE_COLLECTOR_DISCOVERY_SECONDS - time.monotonic())
            )
            copied = children(cluster)
            started = time.monotonic()
            cluster.kubectl("delete", "exportpipelines", "--all", "-n", NAMESPACE, timeout=300)
            deletion_returned = time.monotonic() - started
            deleted_after = collected(cluster, started)
            memory = peak_memory(operator.process.pid)
            baseline_after = baseline_collection(cluster, folder, copied)
        finally:
            operator.stop()
            cluster.stop()
    ready = len(latencies)
    cuts = statistics.quantiles(latencies.values(), n=100) if ready > 1 else [float("nan")] * 99
    print(f"applied {count} ExportPipelines in {applied_after:.1f}s (one kubectl apply)")
    print(f"Ready: {ready}/{count} after {all_ready_after:.1f}s (target ≤ {ALL_READY_SECONDS}s)")
    print(f"apply→Ready: p50 {cuts[49]:.1f}s, p99 {cuts[98]:.1f}s (target p99 < {P99_SECONDS}s)")
    print(
        f"edited {count} (their schedule): every CronJob updated after {edited_after:.1f}s "
        f"(target ≤ {PHASE_SECONDS}s)"
    )
    ratio = deleted_after / baseline_after
    print(
        f"deleted {count} (kubectl delete returned after {deletion_returned:.1f}s): every "
        f"CronJob and ConfigMap collected after {deleted_after:.1f}s; their copies owned by "
        f"{count} plain ConfigMaps: {baseline_after:.1f}s; {ratio:.2f}× "
        f"(target ≤ {COLLECTION_RATIO}×)"
    )
    print(f"operator peak memory: {memory / 10**6:.0f} MB (target < {MEMORY_BYTES / 10**6:.0f} MB)")
    met = (
        ready == count
        and all_ready_after <= ALL_READY_SECONDS
        and cuts[98] < P99_SECONDS
        and edited_after <= PHASE_SECONDS
        and ratio <= COLLECTION_RATIO
        and memory < MEMORY_BYTES
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
