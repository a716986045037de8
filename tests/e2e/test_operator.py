"""`sluice operator` against a real API server and controller manager (no kubelet: the tests
stand in for it by finishing the pods of Jobs themselves)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from sluice.controller import builders
from sluice.controller.runner import RunnerSettings
from sluice.controller.summary import ErrorSample, RunSummary, encode_summary
from sluice.installation import INSTALLED
from sluice.manifests import read_manifests
from sluice.model.connection import Connection
from sluice.model.pipeline import Pipeline, pipeline_to_api
from sluice.model.resources import validate_resources
from sluice.model.workspace import Workspace
from tests.cluster import Cluster, Kubectl
from tests.operator_process import OperatorProcess, eventually, running_operator
from tests.support import EXAMPLES


@pytest.fixture(scope="module")
def operator(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    with running_operator(cluster, tmp_path_factory.mktemp("operator")) as running:
        yield running


class ExampleNamespace:
    """The examples applied in a namespace of their own, with a key of their own."""

    def __init__(self, kubectl: Kubectl, folder: Path, namespace: str) -> None:
        self.kubectl = kubectl
        self.namespace = namespace
        self.key = f"api_{namespace.replace('-', '_')}_key"
        self.folder = folder
        for source in sorted(EXAMPLES.glob("*.yaml")):
            text = source.read_text().replace("namespace: marketing", f"namespace: {namespace}")
            (folder / source.name).write_text(
                text.replace("api_marketing_dashboard_change_me", self.key)
            )
        kubectl("create", "namespace", namespace)
        kubectl("apply", "-f", str(folder))

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(
            self.kubectl("get", kind, name, "-n", self.namespace, "-o", "json").stdout
        )
        return found

    def status(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.get("exportpipeline", name).get("status") or {}
        return found

    def condition(self, name: str, kind: str) -> dict[str, Any] | None:
        return next((c for c in self.status(name).get("conditions", []) if c["type"] == kind), None)

    def patch(self, name: str, patch: dict[str, Any]) -> None:
        self.kubectl(
            "patch",
            "exportpipeline",
            name,
            "-n",
            self.namespace,
            "--type=merge",
            "-p",
            json.dumps(patch),
        )

    def validated(self) -> tuple[dict[str, Pipeline], Workspace, dict[int, Connection]]:
        """What the manifests in the folder validate to, as the operator should see them:
        pipelines by name, the Workspace, Connections by id."""
        manifests = read_manifests([self.folder])
        outcomes = validate_resources(manifests.resources, INSTALLED, secrets=manifests.secrets)
        values = [outcome.value for outcome in outcomes]
        pipelines = {v.resource_name: v for v in values if isinstance(v, Pipeline)}
        workspace = next(v for v in values if isinstance(v, Workspace))
        connections = {v.id: v for v in values if isinstance(v, Connection)}
        return pipelines, workspace, connections


@pytest.fixture
def workspace(
    kubectl: Kubectl, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[ExampleNamespace]:
    namespace = "e2e-" + request.node.name.removeprefix("test_").replace("_", "-")[:40].rstrip("-")
    yield ExampleNamespace(kubectl, tmp_path, namespace)
    kubectl("delete", "namespace", namespace, "--wait=false")


def api_get(operator: OperatorProcess, key: str, path: str) -> httpx.Response:
    return httpx.get(f"{operator.api}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=5)


def wait_ready(workspace: ExampleNamespace) -> None:
    workspace.kubectl(
        "wait",
        "--for=condition=Ready",
        "exportpipeline",
        "--all",
        "-n",
        workspace.namespace,
        "--timeout=60s",
    )


def wait_stalled(workspace: ExampleNamespace, name: str) -> dict[str, Any]:
    """The pipeline's Stalled condition, once it is True."""
    condition: dict[str, Any] = eventually(
        lambda: (c := workspace.condition(name, "Stalled")) and c["status"] == "True" and c,
        f"{name} Stalled",
    )
    return condition


def test_the_examples_become_ready_and_are_served_as_the_api_returns_them(
    operator: OperatorProcess, workspace: ExampleNamespace
) -> None:
    started = time.monotonic()
    wait_ready(workspace)
    ready_after = time.monotonic() - started
    assert ready_after < 20, f"Ready after {ready_after:.1f}s"
    for kind in ("workspace", "connection"):
        workspace.kubectl(
            "wait",
            "--for=condition=Ready",
            kind,
            "--all",
            "-n",
            workspace.namespace,
            "--timeout=10s",
        )
    table = workspace.kubectl("get", "exportpipelines", "-n", workspace.namespace).stdout
    assert table.split("\n")[0].split() == [
        "NAME",
        "READY",
        "STATUS",
        "MODE",
        "SCHEDULE",
        "ENABLED",
        "LAST",
        "RUN",
        "AGE",
    ]
    row = next(line for line in table.splitlines() if line.startswith("export-customers "))
    assert row.split()[1:5] == ["True", "next", "run", "at"] and "CreateOnly" in row

    pipelines, _, _ = workspace.validated()
    for name, pipeline in pipelines.items():
        status = workspace.status(name)
        assert status["id"] == pipeline.id and status["observedGeneration"] == 1
        response = api_get(operator, workspace.key, f"/v1/pipelines/{pipeline.id}")
        assert response.status_code == 200
        assert response.json() == pipeline_to_api(pipeline), name
    # Ready was written as Unknown before it was True: an Event says when it turned True.
    events = workspace.kubectl("get", "events", "-n", workspace.namespace, "-o", "json").stdout
    reasons = {(e["involvedObject"]["name"], e["reason"]) for e in json.loads(events)["items"]}
    assert ("export-customers", "ReconciliationSucceeded") in reasons


def test_the_cronjob_and_configmap_are_exactly_as_specified(
    operator: OperatorProcess, workspace: ExampleNamespace
) -> None:
    wait_ready(workspace)
    pipelines, ws, connections = workspace.validated()
    pipeline = pipelines["export-customers"]
    connection = connections[pipeline.connection]
    owner = builders.owner_reference(
        "export-customers", workspace.get("exportpipeline", "export-customers")["metadata"]["uid"]
    )
    config = builders.export_config(pipeline, ws, connection)
    expected = builders.cron_job(
        pipeline,
        ws,
        connection,
        config_hash=builders.config_hash(config),
        settings=RunnerSettings(),
        owner=owner,
    )
    name = builders.child_name("export-customers", pipeline.id)
    assert workspace.status("export-customers")["cronJobName"] == name
    cron = workspace.get("cronjob", name)
    assert cron["metadata"]["ownerReferences"] == [owner]
    assert cron["metadata"]["labels"] == expected["metadata"]["labels"]
    assert _contains(cron["spec"], expected["spec"])
    assert cron["spec"]["schedule"] == "15 * * * *" and cron["spec"]["suspend"] is False
    config_map = workspace.get("configmap", name)
    assert config_map["data"] == {"pipeline.json": builders.config_text(config)}
    assert config_map["metadata"]["ownerReferences"] == [owner]
    # No secret value of the examples leaves its Secret.
    for secret in ("change-me", workspace.key, "pat-na1-"):
        assert secret not in json.dumps(cron) and secret not in json.dumps(config_map)


def test_an_edit_updates_the_children_and_an_invalid_one_stalls_without_touching_them(
    operator: OperatorProcess, workspace: ExampleNamespace
) -> None:
    wait_ready(workspace)
    name = workspace.status("export-customers")["cronJobName"]
    workspace.patch("export-customers", {"spec": {"schedulePeriod": "15m", "scheduleStart": 7}})
    eventually(
        lambda: workspace.get("cronjob", name)["spec"]["schedule"] == "7,22,37,52 * * * *",
        "the new schedule",
    )
    eventually(
        lambda: workspace.status("export-customers")["observedGeneration"] == 2, "generation 2"
    )
    before = workspace.get("cronjob", name)["metadata"]["resourceVersion"]

    workspace.patch(
        "export-customers", {"spec": {"matching": {"in": "email", "out": "contact.phone"}}}
    )
    stalled = wait_stalled(workspace, "export-customers")
    assert stalled["reason"] == "ValidationFailed"
    assert "contact.phone" in stalled["message"]
    assert workspace.condition("export-customers", "Ready")["status"] == "False"
    assert workspace.status("export-customers")["observedGeneration"] == 3
    assert workspace.get("cronjob", name)["metadata"]["resourceVersion"] == before
    served = api_get(
        operator, workspace.key, f"/v1/pipelines/{workspace.status('export-customers')['id']}"
    )
    assert served.json()["matching"] == {"in": "email", "out": "contact.email"}
    assert served.json()["schedulePeriod"] == "15m"

    workspace.patch(
        "export-customers", {"spec": {"matching": {"out": "contact.email"}, "enabled": False}}
    )
    eventually(
        lambda: workspace.get("cronjob", name)["spec"]["suspend"] is True, "a suspended CronJob"
    )
    assert workspace.condition("export-customers", "Stalled") is None
    assert workspace.condition("export-customers", "Ready")["message"] == "pipeline is disabled"


def test_run_now_creates_a_job_whose_end_becomes_a_run(
    operator: OperatorProcess, workspace: ExampleNamespace
) -> None:
    wait_ready(workspace)
    status = workspace.status("export-customers")
    workspace.kubectl(
        "annotate",
        "exportpipeline",
        "export-customers",
        "-n",
        workspace.namespace,
        f"{builders.RUN_TOKEN_ANNOTATION}=first",
    )
    eventually(
        lambda: workspace.status("export-customers").get("lastHandledRunAt") == "first",
        "the token echoed",
    )
    cron = workspace.get("cronjob", status["cronJobName"])
    job_name = builders.run_now_job(cron, "first", {})["metadata"]["name"]
    job = eventually(lambda: _get_or_none(workspace, "job", job_name), "the run-now Job")
    assert job["metadata"]["ownerReferences"][0]["name"] == "export-customers"
    eventually(lambda: workspace.status("export-customers").get("running") is True, "running")

    # The kubelet's part: the pod ran and wrote its summary as its termination message.
    pod = eventually(lambda: _pods_of(workspace, job_name), "the Job's pod")[0]
    finished = datetime.now(UTC).replace(microsecond=0)
    summary = RunSummary(
        "PartiallyFailed",
        finished,
        finished,
        {"read": 3, "created": 2, "failed": 1},
        "1 profile failed",
        (ErrorSample("42", None, "transform", "value is too long"),),
    )
    _terminate(workspace, pod["metadata"]["name"], encode_summary(summary))

    last_run = eventually(
        lambda: (
            (run := workspace.status("export-customers").get("lastRun"))
            and "outcome" in run
            and run
        ),
        "the run's outcome in the status",
    )
    assert (last_run["jobName"], last_run["outcome"], last_run["counts"]) == (
        job_name,
        "PartiallyFailed",
        {"read": 3, "created": 2, "failed": 1},
    )
    assert workspace.status("export-customers")["running"] is False
    runs = api_get(operator, workspace.key, f"/v1/pipelines/{status['id']}/runs").json()
    assert runs["total"] == 1
    assert runs["runs"][0]["errorSamples"] == [
        {"profile": "42", "externalId": None, "step": "transform", "message": "value is too long"}
    ]
    events = json.loads(
        workspace.kubectl("get", "events", "-n", workspace.namespace, "-o", "json").stdout
    )
    assert "RunPartiallyFailed" in {e["reason"] for e in events["items"]}


def test_a_deleted_connection_stalls_its_pipelines_with_the_api_message(
    operator: OperatorProcess, workspace: ExampleNamespace
) -> None:
    wait_ready(workspace)
    workspace.kubectl("delete", "connection", "hubspot", "-n", workspace.namespace)
    stalled = wait_stalled(workspace, "export-customers")
    assert (stalled["reason"], stalled["message"]) == (
        "ConnectionNotFound",
        "connection does not exist",
    )


def test_reconcile_now_reverts_a_hand_edited_cronjob(
    operator: OperatorProcess, workspace: ExampleNamespace
) -> None:
    wait_ready(workspace)
    name = workspace.status("export-customers")["cronJobName"]
    workspace.kubectl(
        "patch",
        "cronjob",
        name,
        "-n",
        workspace.namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"schedule": "0 0 * * *"}}),
    )
    workspace.kubectl(
        "annotate",
        "exportpipeline",
        "export-customers",
        "-n",
        workspace.namespace,
        "reconcile.fluxcd.io/requestedAt=now-1",
    )
    eventually(
        lambda: workspace.status("export-customers").get("lastHandledReconcileAt") == "now-1",
        "the token echoed",
    )
    assert workspace.get("cronjob", name)["spec"]["schedule"] == "15 * * * *"


def test_a_deleted_pipeline_leaves_the_api_and_its_children_are_collected(
    operator: OperatorProcess, workspace: ExampleNamespace
) -> None:
    wait_ready(workspace)
    status = workspace.status("export-customers")
    workspace.kubectl(
        "delete", "exportpipeline", "export-customers", "-n", workspace.namespace, "--timeout=20s"
    )
    eventually(
        lambda: (
            api_get(operator, workspace.key, f"/v1/pipelines/{status['id']}").status_code == 404
        ),
        "the pipeline gone from the API",
    )
    for kind in ("cronjob", "configmap"):
        eventually(
            lambda kind=kind: _get_or_none(workspace, kind, status["cronJobName"]) is None,
            f"the {kind} collected",
        )


def test_restarting_the_operator_changes_nothing(
    operator: OperatorProcess, workspace: ExampleNamespace
) -> None:
    wait_ready(workspace)
    time.sleep(2)  # let the passes that follow the last status patches settle
    before = _versions(workspace)
    operator.stop()
    operator.start()
    time.sleep(5)  # a few passes of the restarted operator
    assert _versions(workspace) == before


def _versions(workspace: ExampleNamespace) -> dict[str, str]:
    found = {}
    for kind in ("exportpipelines", "cronjobs", "configmaps", "workspaces", "connections"):
        items = json.loads(
            workspace.kubectl("get", kind, "-n", workspace.namespace, "-o", "json").stdout
        )["items"]
        found |= {
            f"{kind}/{i['metadata']['name']}": i["metadata"]["resourceVersion"] for i in items
        }
    return found


def _get_or_none(workspace: ExampleNamespace, kind: str, name: str) -> dict[str, Any] | None:
    result = workspace.kubectl(
        "get", kind, name, "-n", workspace.namespace, "-o", "json", check=False
    )
    if result.returncode != 0:
        return None
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def _pods_of(workspace: ExampleNamespace, job_name: str) -> list[dict[str, Any]]:
    pods = workspace.kubectl(
        "get", "pods", "-n", workspace.namespace, "-l", f"job-name={job_name}", "-o", "json"
    ).stdout
    found: list[dict[str, Any]] = json.loads(pods)["items"]
    return found


def _terminate(workspace: ExampleNamespace, pod: str, message: str) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    status = {
        "status": {
            "phase": "Succeeded",
            "conditions": [{"type": "Ready", "status": "False", "reason": "PodCompleted"}],
            "containerStatuses": [
                {
                    "name": "export",
                    "image": "sluice",
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "state": {
                        "terminated": {
                            "exitCode": 0,
                            "reason": "Completed",
                            "message": message,
                            "startedAt": now,
                            "finishedAt": now,
                        }
                    },
                }
            ],
        }
    }
    workspace.kubectl(
        "patch",
        "pod",
        pod,
        "-n",
        workspace.namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )


def _contains(actual: Any, expected: Any) -> bool:
    """Whether ``actual`` holds everything ``expected`` says (the API server adds defaults)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and _contains(actual[key], value) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(_contains(a, e) for a, e in zip(actual, expected, strict=True))
        )
    return bool(actual == expected)


def test_two_replicas_elect_one_writer_and_the_other_takes_over(
    cluster: Cluster, operator: OperatorProcess, kubectl: Kubectl, tmp_path: Path
) -> None:
    # The module's operator writes without election: stopped here, restarted at the end.
    operator.stop()
    replicas = [
        OperatorProcess(cluster, tmp_path, "--leader-elect", name=f"replica-{n}") for n in (1, 2)
    ]
    try:
        for replica in replicas:
            replica.start()

        def holder() -> str:
            return kubectl(
                "get",
                "lease",
                "sluice-operator",
                "-n",
                "default",
                "-o",
                "jsonpath={.spec.holderIdentity}",
                check=False,
            ).stdout

        leader = eventually(holder, "a lease holder")
        assert leader.endswith(tuple(f"-{r.process.pid}" for r in replicas if r.process))
        workspace = ExampleNamespace(kubectl, tmp_path, "e2e-replicas")
        wait_ready(workspace)
        # The leader stops: the other replica takes the lease and reconciles an edit.
        first = next(r for r in replicas if r.process and leader.endswith(f"-{r.process.pid}"))
        first.stop()
        eventually(lambda: holder() not in ("", leader), "the other replica holding the lease")
        workspace.patch("export-customers", {"spec": {"enabled": False}})
        eventually(
            lambda: (
                workspace.condition("export-customers", "Ready")["message"]
                == "pipeline is disabled"
            ),
            "the edit reconciled by the new leader",
        )
    finally:
        for replica in replicas:
            replica.stop()
        kubectl("delete", "namespace", "e2e-replicas", "--wait=false", check=False)
        operator.start()


def test_an_operator_watching_one_namespace_leaves_the_others_without_status(
    cluster: Cluster, operator: OperatorProcess, kubectl: Kubectl, tmp_path: Path
) -> None:
    # The module's operator watches every namespace: stopped here, restarted at the end.
    operator.stop()
    folders = {name: tmp_path / name for name in ("a", "b", "operator")}
    for folder in folders.values():
        folder.mkdir()
    namespaces = {name: f"e2e-watch-namespace-{name}" for name in ("a", "b")}
    watching = OperatorProcess(
        cluster, folders["operator"], "--watch-namespace", namespaces["a"], name="watching-a"
    )
    try:
        ExampleNamespace(kubectl, folders["b"], namespaces["b"])
        watched = ExampleNamespace(kubectl, folders["a"], namespaces["a"])
        watching.start()
        wait_ready(watched)
        time.sleep(2)  # a pass that would have reached the other namespace has ended
        listed = kubectl(
            "get", "exportpipelines,workspaces,connections", "-n", namespaces["b"], "-o", "json"
        )
        objects = json.loads(listed.stdout)["items"]
        assert {o["kind"] for o in objects} == {"ExportPipeline", "Workspace", "Connection"}
        assert [o["metadata"]["name"] for o in objects if "status" in o] == []
        assert kubectl("get", "cronjobs", "-n", namespaces["b"], "-o", "name").stdout == ""
    finally:
        watching.stop()
        for namespace in namespaces.values():
            kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        operator.start()


#: What docs/operator.md says a namespaced operator needs, as a Role in each watched namespace.
NAMESPACED_RULES = [
    {
        "apiGroups": ["sluice.dev"],
        "resources": ["workspaces", "connections", "exportpipelines"],
        "verbs": ["get", "list", "watch"],
    },
    {
        "apiGroups": ["sluice.dev"],
        "resources": ["workspaces/status", "connections/status", "exportpipelines/status"],
        "verbs": ["patch"],
    },
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "patch"]},
    {"apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": ["create", "patch"]},
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["list", "watch", "create"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "verbs": ["get", "create", "update"],
    },
]


def test_a_namespaced_operator_needs_only_a_role_in_its_namespace(
    cluster: Cluster, operator: OperatorProcess, kubectl: Kubectl, tmp_path: Path
) -> None:
    # The module's operator runs as an admin: stopped here, restarted at the end.
    operator.stop()
    namespace = "e2e-namespaced-role"
    (tmp_path / "manifests").mkdir()
    workspace = ExampleNamespace(kubectl, tmp_path / "manifests", namespace)
    kubectl("create", "serviceaccount", "sluice", "-n", namespace)
    rbac = "rbac.authorization.k8s.io"
    metadata = {"name": "sluice-operator", "namespace": namespace}
    role = {"apiVersion": f"{rbac}/v1", "kind": "Role", "metadata": metadata}
    binding = {
        "apiVersion": f"{rbac}/v1",
        "kind": "RoleBinding",
        "metadata": metadata,
        "roleRef": {"apiGroup": rbac, "kind": "Role", "name": "sluice-operator"},
        "subjects": [{"kind": "ServiceAccount", "name": "sluice", "namespace": namespace}],
    }
    manifests = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [role | {"rules": NAMESPACED_RULES}, binding],
    }
    kubectl("apply", "-f", "-", input_text=json.dumps(manifests))
    token = kubectl("create", "token", "sluice", "-n", namespace).stdout.strip()
    kubeconfig = yaml.safe_load(cluster.kubeconfig.read_text())
    kubeconfig["users"][0]["user"] = {"token": token}
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(kubeconfig))
    as_service_account = dataclasses.replace(cluster, kubeconfig=tmp_path / "kubeconfig")
    namespaced = OperatorProcess(
        as_service_account,
        tmp_path,
        *("--watch-namespace", namespace, "--leader-elect", "--lease-namespace", namespace),
        name="namespaced",
    )
    try:
        namespaced.start()
        wait_ready(workspace)
        assert kubectl("get", "cronjobs", "-n", namespace, "-o", "name").stdout != ""
        holder = kubectl(
            "get",
            "lease",
            "sluice-operator",
            "-n",
            namespace,
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ).stdout
        assert holder != ""
        log = namespaced.log.read_text()
        assert "reconcile pass failed" not in log
        assert "could not post event" not in log
    finally:
        namespaced.stop()
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        operator.start()
