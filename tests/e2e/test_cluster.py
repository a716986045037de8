"""The test cluster behaves as Sluice's end-to-end tests need: the pinned release, Sluice's CRDs
served, and the CronJob, Job and garbage-collector controllers at work."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster import K8S_VERSION, Cluster, Kubectl

REPO = Path(__file__).resolve().parents[2]
SLUICE_CRDS = ("connections.sluice.dev", "exportpipelines.sluice.dev", "workspaces.sluice.dev")
#: No kubelet runs, so no image is ever pulled: any name will do.
IMAGE = "registry.invalid/sluice-e2e:never-pulled"
#: A CronJob scheduled every minute fires at the next minute boundary, plus controller latency.
CRONJOB_TIMEOUT = 75.0
CONTROLLER_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def sluice_crds(cluster: Cluster) -> None:
    """Sluice's CRDs (crds/, as `make crds` writes them) installed and Established."""
    cluster.kubectl("apply", "--server-side", f"--filename={REPO / 'crds'}")
    cluster.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        *(f"customresourcedefinition/{name}" for name in SLUICE_CRDS),
    )


def test_the_server_and_kubectl_are_the_pinned_release(kubectl: Kubectl) -> None:
    versions = json.loads(kubectl("version", "--output=json").stdout)
    assert versions["serverVersion"]["gitVersion"] == K8S_VERSION
    assert versions["clientVersion"]["gitVersion"] == K8S_VERSION


@pytest.mark.usefixtures("sluice_crds")
def test_sluice_crds_store_the_examples_as_written(kubectl: Kubectl, namespace: str) -> None:
    manifests = [
        document
        for path in sorted((REPO / "examples").glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if document is not None
    ]
    for manifest in manifests:  # a namespace of the test's own, not the examples' `marketing`
        manifest["metadata"]["namespace"] = namespace
    custom_objects = [doc for doc in manifests if doc["apiVersion"].startswith("sluice.dev/")]
    assert {doc["kind"] for doc in custom_objects} == {"Connection", "ExportPipeline", "Workspace"}

    kubectl(
        "apply",
        "--filename=-",
        input_text=json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests}),
    )

    for manifest in custom_objects:
        stored = _get(kubectl, manifest["kind"], manifest["metadata"]["name"], namespace)
        # Structural schemas prune unknown fields silently: a field missing from the CRD would
        # show up here as a difference.
        assert stored["spec"] == manifest["spec"], manifest["metadata"]["name"]


@pytest.mark.usefixtures("sluice_crds")
def test_the_crd_schema_rejects_an_invalid_object(kubectl: Kubectl, namespace: str) -> None:
    connection = {
        "apiVersion": "sluice.dev/v1",
        "kind": "Connection",
        "metadata": {"name": "broken", "namespace": namespace},
        "spec": {"id": "not-a-number", "connector": "hubspot", "role": "Destination"},
    }
    result = kubectl("create", "--filename=-", input_text=json.dumps(connection), check=False)
    assert result.returncode != 0
    assert "spec.id" in result.stderr
    assert "must be of type integer" in result.stderr


def test_the_garbage_collector_deletes_a_job_whose_owner_is_deleted(
    kubectl: Kubectl, namespace: str
) -> None:
    owner = json.loads(
        kubectl("create", "configmap", "owner", f"--namespace={namespace}", "--output=json").stdout
    )
    job = _job("owned", namespace)
    job["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": "owner",
            "uid": owner["metadata"]["uid"],
        }
    ]
    kubectl("create", "--filename=-", input_text=json.dumps(job))
    # The Job controller works: it creates the Job's Pod (which stays Pending: no kubelet).
    _eventually(
        lambda: bool(_job_pods(kubectl, namespace, "owned")),
        CONTROLLER_TIMEOUT,
        "the Job controller to create a Pod",
    )

    kubectl("delete", "configmap", "owner", f"--namespace={namespace}")

    kubectl(
        "wait",
        "--for=delete",
        f"--timeout={CONTROLLER_TIMEOUT:.0f}s",
        f"--namespace={namespace}",
        "job/owned",
    )
    _eventually(
        lambda: not _job_pods(kubectl, namespace, "owned"),
        CONTROLLER_TIMEOUT,
        "the garbage collector to delete the Job's Pod",
    )


def test_a_cronjob_scheduled_every_minute_gets_a_job(kubectl: Kubectl, namespace: str) -> None:
    cronjob = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "every-minute", "namespace": namespace},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": _job("", namespace)["spec"]}},
    }
    kubectl("create", "--filename=-", input_text=json.dumps(cronjob))

    def cronjob_jobs() -> list[str]:
        jobs = json.loads(
            kubectl("get", "jobs", f"--namespace={namespace}", "--output=json").stdout
        )["items"]
        return [
            job["metadata"]["name"]
            for job in jobs
            if any(
                reference["kind"] == "CronJob" and reference["name"] == "every-minute"
                for reference in job["metadata"].get("ownerReferences", [])
            )
        ]

    _eventually(
        lambda: bool(cronjob_jobs()), CRONJOB_TIMEOUT, "the CronJob controller to create a Job"
    )


# -- helpers ---------------------------------------------------------------------------------


def _get(kubectl: Kubectl, kind: str, name: str, namespace: str) -> dict[str, Any]:
    stored: dict[str, Any] = json.loads(
        kubectl("get", kind, name, f"--namespace={namespace}", "--output=json").stdout
    )
    return stored


def _job(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "run", "image": IMAGE}],
                }
            },
        },
    }


def _job_pods(kubectl: Kubectl, namespace: str, job: str) -> list[str]:
    pods = kubectl(
        "get",
        "pods",
        f"--namespace={namespace}",
        f"--selector=batch.kubernetes.io/job-name={job}",
        "--output=name",
    ).stdout
    return pods.split()


def _eventually(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            pytest.fail(f"waited {timeout:.0f} s for {what}, in vain")
        time.sleep(0.5)
