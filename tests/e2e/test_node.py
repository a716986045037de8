"""Sluice installed with its Helm chart on a cluster with a real node, the whole loop as a user
sees it: `helm install` → an ExportPipeline applied → the operator in its pod → CronJob → Job →
a pod running `sluice export` from Sluice's image → contacts in the application → the run in
the pipeline's status and in `/v1/pipelines/{id}/runs` through the chart's Service.

The tests run in order and share one release: each step starts where the previous one ended.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml

from sluice.model.types import parse_type
from sluice.twins.hubspot import HubSpotTwin, serve
from sluice.warehouses import open_warehouse
from sluice.warehouses.loading import create_profiles_table, insert_profiles
from tests.cluster import Cluster
from tests.helm import CHART, helm
from tests.node import GATEWAY, POD_SUBNET
from tests.operator_process import eventually
from tests.postgres import postgres_server, temporary_database
from tests.support import EXAMPLES

RELEASE = "sluice"
SYSTEM_NAMESPACE = "sluice-system"
NAMESPACE = "marketing"
PIPELINE = "export-customers"
TOKEN = "pat-node-e2e"
API_KEY = "api_marketing_node_e2e"
#: In the warehouse DSN the Secret holds (the harness's PostgreSQL trusts the pods' subnet).
WAREHOUSE_PASSWORD = "pw-node-e2e-warehouse"
RESTRICTED = "pod-security.kubernetes.io/enforce=restricted"
RUN_TIMEOUT = 240.0


@dataclass
class Warehouse:
    dsn: str
    """As pods reach it: the node's gateway."""
    local_dsn: str
    """As the tests reach it: loopback."""

    def load(self, profiles: dict[str, dict[str, Any]]) -> None:
        """Add profiles (the table is made on first use)."""
        schema = parse_type(_profile_schema())
        warehouse = open_warehouse("PostgreSQL", dsn=self.local_dsn)
        try:
            existing = warehouse.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'profiles'"
            )[0][0]
            if not existing:
                create_profiles_table(warehouse, "profiles", "_kpid", schema)
            insert_profiles(warehouse, "profiles", "_kpid", schema, profiles.items())
        finally:
            warehouse.close()


def _profile_schema() -> dict[str, Any]:
    for document in yaml.safe_load_all((EXAMPLES / "workspace.yaml").read_text()):
        if document["kind"] == "Workspace":
            schema: dict[str, Any] = document["spec"]["profileSchema"]
            return schema
    raise AssertionError("examples/workspace.yaml holds no Workspace")


def _profiles(start: int, count: int) -> dict[str, dict[str, Any]]:
    """`count` profiles, every other one in the US (the seed pipeline's filter)."""
    return {
        f"p{n}": {
            "first_name": f"First{n}",
            "last_name": f"Last{n}",
            "email": f"person{n}@example.com",
            "address": {"country": "US" if n % 2 == 0 else "FR"},
        }
        for n in range(start, start + count)
    }


def _us_emails(profiles: dict[str, dict[str, Any]]) -> set[str]:
    return {p["email"] for p in profiles.values() if p["address"]["country"] == "US"}


@pytest.fixture(scope="module")
def warehouse() -> Iterator[Warehouse]:
    with (
        postgres_server(also_listen=GATEWAY, also_trust=POD_SUBNET) as server,
        temporary_database(server.url) as url,
    ):
        local = sa.make_url(url).set(drivername="postgresql")
        yield Warehouse(
            dsn=local.set(host=GATEWAY, password=WAREHOUSE_PASSWORD).render_as_string(False),
            local_dsn=local.render_as_string(False),
        )


@pytest.fixture(scope="module")
def twin() -> Iterator[tuple[HubSpotTwin, str]]:
    app = HubSpotTwin(TOKEN, rate_limit=False)
    with serve(app, host=GATEWAY) as base_url:
        yield app, base_url


@dataclass
class Installed:
    cluster: Cluster
    twin: HubSpotTwin
    warehouse: Warehouse
    loaded: dict[str, dict[str, Any]]

    def kubectl(self, *args: str, check: bool = True) -> str:
        return self.cluster.kubectl(*args, check=check).stdout

    def get(self, *args: str) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.kubectl("get", *args, "-o", "json"))
        return found

    def pipeline(self, name: str = PIPELINE) -> dict[str, Any]:
        return self.get("exportpipeline", name, "-n", NAMESPACE)

    def emails(self) -> list[str]:
        return sorted(c["properties"]["email"] for c in self.twin.contacts())

    def runs(self) -> list[dict[str, Any]]:
        """The pipeline's runs, read through the chart's Service (its cluster address)."""
        service = self.get("service", RELEASE, "-n", SYSTEM_NAMESPACE)
        address = f"http://{service['spec']['clusterIP']}:8080"
        pipeline_id = self.pipeline()["status"]["id"]
        answer = httpx.get(
            f"{address}/v1/pipelines/{pipeline_id}/runs",
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        runs: list[dict[str, Any]] = answer.json()["runs"]
        return runs


def _apply_examples(cluster: Cluster, folder: Path, warehouse: Warehouse, base_url: str) -> None:
    """The examples' Workspace, Connection and seed pipeline, pointed at the harness's
    PostgreSQL and twin, in a namespace that enforces the restricted Pod Security Standard."""
    replacements = {
        "postgresql://sluice:change-me@warehouse.example.internal:5432/analytics": warehouse.dsn,
        "pat-na1-00000000-0000-0000-0000-000000000000": TOKEN,
        "api_marketing_dashboard_change_me": API_KEY,
        "settings: {}": f"settings: {{baseUrl: '{base_url}'}}",
    }
    for name in ("workspace.yaml", "hubspot-connection.yaml", "seed-pipeline.yaml"):
        text = (EXAMPLES / name).read_text()
        for old, new in replacements.items():
            text = text.replace(old, new)
        (folder / name).write_text(text)
    cluster.kubectl("create", "namespace", NAMESPACE)
    cluster.kubectl("label", "namespace", NAMESPACE, RESTRICTED)
    cluster.kubectl("apply", "-f", str(folder))


@pytest.fixture(scope="module")
def installed(
    node_cluster: Cluster,
    warehouse: Warehouse,
    twin: tuple[HubSpotTwin, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Installed]:
    """The chart installed as a user installs it (no --set), into a restricted namespace."""
    node_cluster.kubectl("create", "namespace", SYSTEM_NAMESPACE)
    node_cluster.kubectl("label", "namespace", SYSTEM_NAMESPACE, RESTRICTED)
    helm(
        "install",
        RELEASE,
        str(CHART),
        "-n",
        SYSTEM_NAMESPACE,
        "--wait",
        "--timeout=180s",
        kubeconfig=node_cluster.kubeconfig,
    )
    loaded = _profiles(0, 40)
    warehouse.load(loaded)
    app, base_url = twin
    _apply_examples(node_cluster, tmp_path_factory.mktemp("manifests"), warehouse, base_url)
    yield Installed(node_cluster, app, warehouse, loaded)
    helm(
        "uninstall",
        RELEASE,
        "-n",
        SYSTEM_NAMESPACE,
        "--ignore-not-found",
        kubeconfig=node_cluster.kubeconfig,
    )


def _request_run(installed: Installed, pipeline: str = PIPELINE) -> str:
    token = datetime.now(UTC).isoformat()
    installed.kubectl(
        "annotate",
        "exportpipeline",
        pipeline,
        "-n",
        NAMESPACE,
        f"sluice.dev/run-requested-at={token}",
        "--overwrite",
    )
    return token


def _finished_run(installed: Installed, after: int, pipeline: str = PIPELINE) -> dict[str, Any]:
    """The pipeline's status.lastRun once a run with an id above `after` has finished."""

    def finished() -> dict[str, Any] | None:
        last = installed.pipeline(pipeline).get("status", {}).get("lastRun")
        if last and last["id"] > after and last.get("finishedAt"):
            return dict(last)
        return None

    found: dict[str, Any] = eventually(finished, "the run to finish", RUN_TIMEOUT)
    return found


def _last_run_id(installed: Installed, pipeline: str = PIPELINE) -> int:
    last = installed.pipeline(pipeline).get("status", {}).get("lastRun") or {}
    return int(last.get("id", 0))


def test_the_chart_installs_with_its_own_rbac_in_a_restricted_namespace(
    installed: Installed,
) -> None:
    deployment = installed.get("deployment", RELEASE, "-n", SYSTEM_NAMESPACE)
    assert deployment["status"].get("readyReplicas") == 1
    pods = installed.get("pods", "-n", SYSTEM_NAMESPACE, "-l", "app.kubernetes.io/name=sluice")
    (pod,) = pods["items"]
    assert pod["spec"]["nodeName"] == "sluice-node"
    assert pod["spec"]["containers"][0]["image"] == "sluice:0.1.0"
    account = f"system:serviceaccount:{SYSTEM_NAMESPACE}:{pod['spec']['serviceAccountName']}"
    can = installed.cluster.kubectl
    allowed = can(
        "auth",
        "can-i",
        "patch",
        "exportpipelines.sluice.dev",
        "--subresource=status",
        f"--as={account}",
        "-A",
    )
    assert allowed.stdout.strip() == "yes"
    denied = can("auth", "can-i", "create", "clusterrolebindings", f"--as={account}", check=False)
    assert denied.stdout.strip() == "no"


def test_the_seed_pipeline_becomes_ready(installed: Installed) -> None:
    installed.kubectl(
        "wait",
        "--for=condition=Ready",
        "exportpipeline",
        PIPELINE,
        "-n",
        NAMESPACE,
        "--timeout=120s",
    )
    cron_job = installed.pipeline()["status"]["cronJobName"]
    assert installed.get("cronjob", cron_job, "-n", NAMESPACE)["spec"]["schedule"] == "15 * * * *"


def test_a_requested_run_exports_in_a_pod_and_reports_back(installed: Installed) -> None:
    before = _last_run_id(installed)
    _request_run(installed)
    run = _finished_run(installed, before)
    selected = _us_emails(installed.loaded)
    assert run["outcome"] == "Succeeded", run
    assert run["counts"]["created"] == len(selected)
    assert installed.emails() == sorted(selected)
    job = installed.get("job", run["jobName"], "-n", NAMESPACE)
    assert job["status"].get("succeeded") == 1
    runs = installed.runs()
    assert runs[0]["id"] == run["id"]
    assert runs[0]["outcome"] == "Succeeded"


def test_the_cron_job_runs_on_its_schedule_and_sends_nothing_new(installed: Installed) -> None:
    writes = installed.twin.stats()
    writes_before = writes["creates"] + writes["updates"]
    before = _last_run_id(installed)
    # The first minute at least 30 s away (time for the operator to apply the schedule) is
    # the slot: five-minute slots start at that minute, modulo 5.
    soon = datetime.now(UTC) + timedelta(seconds=30)
    slot = soon.replace(second=0, microsecond=0) + timedelta(minutes=1)
    installed.kubectl(
        "patch",
        "exportpipeline",
        PIPELINE,
        "-n",
        NAMESPACE,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"schedulePeriod": "5m", "scheduleStart": slot.minute % 5}}),
    )
    run = _finished_run(installed, before)
    assert "-run-" not in run["jobName"]  # made by the CronJob, not by a run request
    assert run["outcome"] == "Succeeded", run
    assert run["counts"].get("created", 0) == 0
    assert run["counts"].get("updated", 0) == 0
    writes = installed.twin.stats()
    assert writes["creates"] + writes["updates"] == writes_before


def test_an_export_pod_deleted_mid_run_loses_and_duplicates_nothing(installed: Installed) -> None:
    more = _profiles(1000, 4000)
    installed.warehouse.load(more)
    installed.loaded.update(more)
    installed.twin.set_latency(0.4)
    before_count = installed.twin.contact_count()
    before = _last_run_id(installed)
    token = _request_run(installed)
    eventually(
        lambda: installed.twin.contact_count() > before_count, "the first contacts of the run"
    )
    jobs = installed.get("jobs", "-n", NAMESPACE)["items"]
    (job,) = [
        j
        for j in jobs
        if j["metadata"].get("annotations", {}).get("sluice.dev/run-requested-at") == token
    ]
    pods = installed.get("pods", "-n", NAMESPACE, "-l", f"job-name={job['metadata']['name']}")
    running = [p["metadata"]["name"] for p in pods["items"] if p["status"]["phase"] == "Running"]
    assert running, pods
    installed.kubectl("delete", "pod", *running, "-n", NAMESPACE, "--wait=false")
    selected = _us_emails(installed.loaded)
    assert installed.twin.contact_count() < len(selected), "the run ended before the pod went"
    installed.twin.set_latency(0)
    _finished_run(installed, before)
    # Whatever the Job's retry left, the next run completes the export.
    before = _last_run_id(installed)
    _request_run(installed)
    run = _finished_run(installed, before)
    assert run["outcome"] == "Succeeded", run
    emails = installed.emails()
    assert len(emails) == len(set(emails))
    assert emails == sorted(selected)


def _run_to_the_end(installed: Installed, pipeline: str) -> dict[str, Any]:
    installed.kubectl(
        "wait", "--for=condition=Ready", "exportpipeline", pipeline, "-n", NAMESPACE,
        "--timeout=120s",
    )  # fmt: skip
    before = _last_run_id(installed, pipeline)
    _request_run(installed, pipeline)
    return _finished_run(installed, before, pipeline)


def test_functions_run_in_their_sandbox_in_the_restricted_export_pods(
    installed: Installed, tmp_path: Path
) -> None:
    """The examples' Python and JavaScript pipelines: the workers confine themselves (Landlock,
    seccomp) inside a non-root pod under the RuntimeDefault seccomp profile, or the runs fail
    saying the sandbox cannot be set up."""
    for name in ("python-function-pipeline.yaml", "javascript-function-pipeline.yaml"):
        (tmp_path / name).write_text((EXAMPLES / name).read_text())
    installed.kubectl("apply", "-f", str(tmp_path))
    selected = _us_emails(installed.loaded)
    everyone = {p["email"] for p in installed.loaded.values()}

    # Python, told the purpose: the seed pipeline's contacts are updated (their stage left
    # alone), the others created with one.
    run = _run_to_the_end(installed, "stage-customers")
    assert run["outcome"] == "Succeeded", run
    assert (run["counts"]["created"], run["counts"]["updated"]) == (
        len(everyone - selected),
        len(selected),
    )
    contacts = {c["properties"]["email"]: c["properties"] for c in installed.twin.contacts()}
    assert contacts["person0@example.com"].get("lifecyclestage") is None
    assert contacts["person1@example.com"]["lifecyclestage"] == "lead"
    assert contacts["person1@example.com"]["firstname"] == "First1"

    # JavaScript: every contact now exists, and each gets its region.
    run = _run_to_the_end(installed, "region-customers")
    assert run["outcome"] == "Succeeded", run
    assert run["counts"]["updated"] == len(everyone)
    contacts = {c["properties"]["email"]: c["properties"] for c in installed.twin.contacts()}
    assert contacts["person0@example.com"]["country"] == "US (Americas)"
    assert contacts["person1@example.com"]["country"] == "FR (Europe)"
    assert contacts["person1@example.com"]["lastname"] == "LAST1"
    assert sorted(contacts) == sorted(everyone)


def test_no_secret_shows_in_the_cluster_outside_its_secrets(installed: Installed) -> None:
    """After the runs above: ConfigMaps, the resources and their status, Events, Jobs, CronJobs,
    Pods (their termination messages) and the logs of the operator and of every export pod
    hold neither the token, nor the API key, nor the warehouse password."""
    kinds = "configmaps,workspaces,connections,exportpipelines,events,jobs,cronjobs,pods"
    seen = {"the cluster's objects": installed.kubectl("get", kinds, "-A", "-o", "json")}
    for namespace in (SYSTEM_NAMESPACE, NAMESPACE):
        for pod in installed.get("pods", "-n", namespace)["items"]:
            name = pod["metadata"]["name"]
            seen[f"the logs of {namespace}/{name}"] = installed.kubectl(
                "logs", name, "-n", namespace, "--all-containers", check=False
            )
    assert any(NAMESPACE in place for place in seen), "no export pod left to read the logs of"
    assert '"terminated"' in seen["the cluster's objects"]  # the export pods' termination
    secrets = {"token": TOKEN, "API key": API_KEY, "warehouse password": WAREHOUSE_PASSWORD}
    hits = [
        f"the {name} in {place}"
        for place, text in seen.items()
        for name, secret in secrets.items()
        if secret in text
    ]
    assert hits == []


def test_helm_upgrade_rolls_the_operator_and_leaves_pipelines_alone(installed: Installed) -> None:
    selector = "app.kubernetes.io/name=sluice"
    old_pods = {
        p["metadata"]["uid"]
        for p in installed.get("pods", "-n", SYSTEM_NAMESPACE, "-l", selector)["items"]
    }
    cron_job = installed.pipeline()["status"]["cronJobName"]
    old_cron_job = installed.get("cronjob", cron_job, "-n", NAMESPACE)["metadata"]
    helm(
        "upgrade",
        RELEASE,
        str(CHART),
        "-n",
        SYSTEM_NAMESPACE,
        "--reuse-values",
        "--set",
        "podAnnotations.rolled=yes",
        "--wait",
        "--timeout=180s",
        kubeconfig=installed.cluster.kubeconfig,
    )

    def rolled() -> bool:
        pods = installed.get("pods", "-n", SYSTEM_NAMESPACE, "-l", selector)["items"]
        return bool(pods) and all(
            p["metadata"]["uid"] not in old_pods
            and p["metadata"].get("annotations", {}).get("rolled") == "yes"
            for p in pods
        )

    eventually(rolled, "the operator pod to be replaced")
    installed.kubectl("wait", "--for=condition=Ready", "exportpipeline", PIPELINE, "-n", NAMESPACE)
    time.sleep(5)  # the new operator's first pass has applied the children by now
    new_cron_job = installed.get("cronjob", cron_job, "-n", NAMESPACE)["metadata"]
    assert new_cron_job["uid"] == old_cron_job["uid"]
    assert new_cron_job["resourceVersion"] == old_cron_job["resourceVersion"]


def test_helm_uninstall_keeps_the_crds_and_the_pipelines(installed: Installed) -> None:
    helm(
        "uninstall",
        RELEASE,
        "-n",
        SYSTEM_NAMESPACE,
        "--wait",
        kubeconfig=installed.cluster.kubeconfig,
    )
    for kind in ("deployment", "service", "serviceaccount", "clusterrole", "clusterrolebinding"):
        left = installed.kubectl(
            "get", kind, "-A", "-l", f"app.kubernetes.io/instance={RELEASE}", "-o", "name"
        )
        assert left.strip() == "", f"{kind} left after uninstall: {left}"
    crds = installed.kubectl("get", "crd", "-o", "name")
    assert "exportpipelines.sluice.dev" in crds
    assert installed.pipeline()["metadata"]["name"] == PIPELINE
