"""`sluice operator` under faults on the session's control plane: SIGKILLed in the middle of
reconciling 200 pipelines and started again on the same store, and the kube-apiserver
restarted under it. Timings are printed (`pytest -s` shows them)."""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from sluice.controller import builders
from sluice.store import Store
from tests.cluster import Cluster
from tests.e2e.test_operator import ExampleNamespace, wait_ready
from tests.operator_process import OperatorProcess, eventually, write_seed_copies

PIPELINES = 200
#: The operator is killed once this many pipelines are Ready, and the kill must come before
#: KILLED_BEFORE_READY are: mid-way through the work.
KILL_AT_READY = 20
KILLED_BEFORE_READY = 150
APPLY_SECONDS = 120.0
ALL_READY_SECONDS = 120.0
#: Long enough for a few passes of the restarted operator to write what they would.
SETTLE_SECONDS = 5.0
APISERVER_DOWN_SECONDS = 5.0
#: After the API server is back, how soon the operator must have acted on new changes.
RESUME_SECONDS = 60.0


def test_an_operator_killed_mid_way_through_200_pipelines_leaves_one_cronjob_each(
    cluster: Cluster, operator: OperatorProcess, namespace: str, tmp_path: Path
) -> None:
    pipelines = write_seed_copies(tmp_path, PIPELINES, namespace)
    for name in ("workspace.yaml", "hubspot-connection.yaml"):
        cluster.kubectl("apply", "-f", str(tmp_path / name))
    # The apply goes on in a thread: the operator may die while pipelines are still arriving.
    with ThreadPoolExecutor(max_workers=1) as pool:
        started = time.monotonic()
        applying = pool.submit(
            cluster.kubectl, "apply", "--server-side", "-f", str(pipelines), timeout=APPLY_SECONDS
        )
        ready_at_kill = eventually(
            lambda: (ready := _ready_count(cluster, namespace)) >= KILL_AT_READY and ready,
            f"{KILL_AT_READY} pipelines Ready",
        )
        operator.kill()
        killed_after = time.monotonic() - started
        applying.result()
    assert ready_at_kill < KILLED_BEFORE_READY, f"killed with {ready_at_kill} Ready: too late"

    operator.start()
    restarted = time.monotonic()
    cluster.kubectl(
        "wait",
        "--for=condition=Ready",
        "exportpipeline",
        "--all",
        "-n",
        namespace,
        f"--timeout={ALL_READY_SECONDS:.0f}s",
        timeout=ALL_READY_SECONDS + 10,
    )
    all_ready_after = time.monotonic() - restarted
    print(
        f"\nkilled {killed_after:.1f}s after the apply began, {ready_at_kill}/{PIPELINES} Ready; "
        f"all Ready {all_ready_after:.1f}s after the restart"
    )

    owned = _children_by_pipeline(cluster, namespace)
    time.sleep(SETTLE_SECONDS)
    assert _children_by_pipeline(cluster, namespace) == owned, "children changed once all Ready"
    listed = _items(cluster, "exportpipelines", namespace)
    assert len(listed) == PIPELINES
    ids = {item["metadata"]["name"]: item["status"]["id"] for item in listed}
    store = Store(operator.store)
    try:
        stored = {name: id_ for (ns, name), id_ in store.pipeline_ids().items() if ns == namespace}
    finally:
        store.close()
    assert stored == ids


@pytest.mark.parametrize("crash", [False, True], ids=["stopped", "crashed"])
def test_the_operator_resumes_watching_after_the_kube_apiserver_restarts(
    cluster: Cluster,
    operator: OperatorProcess,
    examples: ExampleNamespace,
    tmp_path: Path,
    crash: bool,
) -> None:
    wait_ready(examples)
    assert operator.process is not None
    running = operator.process
    cron_job = examples.status("export-customers")["cronJobName"]
    stopping = time.monotonic()
    with cluster.apiserver_stopped(crash=crash):
        stopped_after = time.monotonic() - stopping
        time.sleep(APISERVER_DOWN_SECONDS)
    back = time.monotonic()
    assert running.poll() is None and operator.process is running, "the operator exited"

    # Both changes reach the operator only through its watches: a pass over what kopf last
    # reported would see neither.
    examples.patch("export-customers", {"spec": {"schedulePeriod": "15m", "scheduleStart": 7}})
    (tmp_path / "new").mkdir()
    new = write_seed_copies(tmp_path / "new", 1, examples.namespace)
    cluster.kubectl("apply", "-f", str(new))
    eventually(
        lambda: examples.get("cronjob", cron_job)["spec"]["schedule"] == "7,22,37,52 * * * *",
        "the edited schedule in the CronJob",
        timeout=RESUME_SECONDS,
    )
    eventually(
        lambda: (
            (condition := examples.condition("export-customers-0", "Ready"))
            and condition["status"] == "True"
        ),
        "the new pipeline Ready",
        timeout=RESUME_SECONDS,
    )
    resumed_after = time.monotonic() - back
    print(
        f"\nAPI server stopped in {stopped_after:.1f}s, down {back - stopping:.1f}s; "
        f"the operator acted on both changes {resumed_after:.1f}s after it was back"
    )
    assert running.poll() is None, "the operator exited"


def _items(cluster: Cluster, kind: str, namespace: str, *selector: str) -> list[dict[str, Any]]:
    listed = cluster.kubectl("get", kind, "-n", namespace, *selector, "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(listed)["items"]
    return items


def _ready_count(cluster: Cluster, namespace: str) -> int:
    return sum(
        any(
            condition["type"] == "Ready" and condition["status"] == "True"
            for condition in (item.get("status") or {}).get("conditions", [])
        )
        for item in _items(cluster, "exportpipelines", namespace)
    )


def _children_by_pipeline(cluster: Cluster, namespace: str) -> dict[str, list[Any]]:
    """What identifies each pipeline's CronJob and ConfigMap, by kind and pipeline name, after
    checking that every child Sluice made has exactly one owner, a pipeline, that each pipeline
    owns exactly one child of each kind, and that its status names it. The identity is what a
    re-creation or a new apply would change: for a CronJob its generation, not its
    resourceVersion, which a Job started on schedule changes."""
    pipelines = {
        item["metadata"]["uid"]: item for item in _items(cluster, "exportpipelines", namespace)
    }
    children: dict[str, list[Any]] = {}
    for kind in ("cronjobs", "configmaps"):
        found = _items(cluster, kind, namespace, "-l", "app.kubernetes.io/managed-by=sluice")
        not_owned_once = [
            child["metadata"]["name"]
            for child in found
            if len(child["metadata"].get("ownerReferences", [])) != 1
        ]
        assert not not_owned_once, f"{kind} without exactly one owner: {not_owned_once}"
        owners = Counter(child["metadata"]["ownerReferences"][0]["uid"] for child in found)
        assert owners == Counter(dict.fromkeys(pipelines, 1)), f"{kind} not one per pipeline"
        for child in found:
            metadata = child["metadata"]
            owner = pipelines[metadata["ownerReferences"][0]["uid"]]
            assert metadata["name"] == owner["status"]["cronJobName"]
            assert metadata["labels"][builders.PIPELINE_ID_LABEL] == str(owner["status"]["id"])
            revision = metadata["generation" if kind == "cronjobs" else "resourceVersion"]
            children[f"{kind}/{owner['metadata']['name']}"] = [
                metadata["uid"],
                metadata["creationTimestamp"],
                revision,
            ]
    return children
