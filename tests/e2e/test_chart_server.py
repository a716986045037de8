"""The Helm chart's objects against a real API server: accepted (server-side dry run), pods
admitted under the restricted Pod Security Standard, and RBAC that lets a real operator do its
whole job, as the chart's ServiceAccount, and nothing more.

What `helm template` renders is checked in tests/chart/test_chart.py.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from sluice.controller import builders
from sluice.controller.leadership import LEASE_NAME
from tests.chart.rendering import EVERY_OPTION, Json, one, render, require_helm, runner_pod
from tests.cluster import Cluster, Kubectl
from tests.e2e.test_operator import ExampleNamespace, _pods_of, _terminate, wait_ready
from tests.operator_process import OperatorProcess, eventually, install_crds

ACCOUNT_KINDS = ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
#: What the operator's log says when a request was refused.
#: A refusal in the operator's log; 403 as a whole number only (a port such as 40345 is not one).
FORBIDDEN_IN_LOGS = re.compile(r"\b403\b|Forbidden|forbidden|Not enough permissions")


@pytest.fixture(scope="module")
def crds(cluster: Cluster) -> None:
    """Helm, and the CRDs applied for real (as `kubectl apply -f crds/` users do), so that a
    server-side dry run validates objects that use them."""
    require_helm()
    install_crds(cluster)


@dataclasses.dataclass
class Release:
    """The chart rendered as a release of its own, its namespaces created; removed after."""

    kubectl: Kubectl
    name: str
    namespace: str
    watched: list[str]
    objects: list[Json] = dataclasses.field(default_factory=list)

    @property
    def operator(self) -> str:
        """The operator's identity, as the API server names its ServiceAccount."""
        account = one(self.objects, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"]
        return f"system:serviceaccount:{self.namespace}:{account}"

    def apply(self, objects: list[Json], *options: str) -> str:
        text = yaml.safe_dump_all(objects)
        return self.kubectl("apply", *options, "-f", "-", input_text=text).stdout

    def can(self, verb: str, resource: str, namespace: str, *, who: str | None = None) -> bool:
        """`kubectl auth can-i`: ``resource`` may name an object (`leases/NAME`) or, after a
        colon, a subresource (`exportpipelines.sluice.dev:status`)."""
        resource, _, subresource = resource.partition(":")
        options = [f"--subresource={subresource}"] if subresource else []
        answer = self.kubectl(
            "auth",
            "can-i",
            verb,
            resource,
            *options,
            f"--as={who or self.operator}",
            "-n",
            namespace,
            check=False,
        ).stdout.strip()
        assert answer in ("yes", "no"), answer
        return answer == "yes"


@pytest.fixture
def release(kubectl: Kubectl, crds: None, request: pytest.FixtureRequest) -> Iterator[Release]:
    """A release of its own for the test (so that its cluster-wide objects are its own), named
    after it, in a namespace of that name; removed after."""
    test = request.node.name
    digest = hashlib.sha256(test.encode()).hexdigest()[:6]
    slug = re.sub(r"[^a-z0-9]+", "-", test.removeprefix("test_")[:20]).strip("-")
    name = f"chart-{slug}-{digest}"
    made = Release(kubectl, name, name, [])
    yield made
    for kind in ("clusterrolebinding", "clusterrole"):
        kubectl("delete", kind, "-l", f"app.kubernetes.io/instance={name}", check=False)
    for namespace in (made.namespace, *made.watched):
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def install(
    release: Release, values: Json, *, watch: bool = False, existing: str | None = None
) -> list[Json]:
    """Render the chart for the release (with `watch`, watching two namespaces of its own),
    create its namespaces but ``existing``, and return the objects."""
    if watch:
        release.watched = [f"{release.namespace}-a", f"{release.namespace}-b"]
        values = {**values, "watchNamespaces": release.watched}
    release.objects = render(values=values, namespace=release.namespace, release=release.name)
    for namespace in (release.namespace, *release.watched):
        if namespace != existing:
            release.kubectl("create", "namespace", namespace)
    return release.objects


def as_pod(template: Json, name: str, namespace: str) -> Json:
    """A Pod made of a pod template."""
    pod = {"apiVersion": "v1", "kind": "Pod", **copy.deepcopy(template)}
    pod["metadata"] = {**pod["metadata"], "name": name, "namespace": namespace}
    return pod


# ---------------------------------------------------------------------------------------------
# Valid objects, admitted pods
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("values", [{}, EVERY_OPTION], ids=["defaults", "every-option"])
def test_the_rendered_objects_are_accepted_by_the_api_server(
    release: Release, values: Json
) -> None:
    objects = install(release, values, watch=bool(values))
    applied = release.apply(objects, "--dry-run=server")
    assert applied.count("(server dry run)") == len(objects), applied


def test_the_pods_are_admitted_under_the_restricted_standard(release: Release) -> None:
    objects = install(release, {})
    namespace = release.namespace
    release.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    operator = one(objects, "Deployment")["spec"]["template"]
    for name, template in (("operator", operator), ("export", runner_pod(objects))):
        release.apply([as_pod(template, name, namespace)], "--dry-run=server")
    # The same admission refuses what the standard forbids.
    operator["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    refused = release.kubectl(
        "apply",
        "--dry-run=server",
        "-f",
        "-",
        input_text=json.dumps(as_pod(operator, "refused", namespace)),
        check=False,
    )
    assert 'violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false' in (
        refused.stderr
    )


# ---------------------------------------------------------------------------------------------
# RBAC: enough for what the operator does, nothing more
# ---------------------------------------------------------------------------------------------

#: What the operator does in a namespace it watches: (verb, resource).
DOES = [
    *(
        (verb, f"{kind}.sluice.dev")
        for kind in ("workspaces", "connections", "exportpipelines")
        for verb in ("list", "watch")
    ),
    *(
        ("patch", f"{kind}.sluice.dev:status")
        for kind in ("workspaces", "connections", "exportpipelines")
    ),
    # Where OwnerReferencesPermissionEnforcement is on: children block their owner's deletion.
    ("update", "exportpipelines.sluice.dev:finalizers"),
    ("create", "configmaps"),
    ("patch", "configmaps"),
    ("create", "cronjobs.batch"),
    ("patch", "cronjobs.batch"),
    ("create", "jobs.batch"),
    ("list", "jobs.batch"),
    ("watch", "jobs.batch"),
    ("list", "pods"),
    ("get", "secrets"),
    ("create", "events"),
]
#: What it never does there.
NEVER = [
    ("update", "exportpipelines.sluice.dev"),
    ("patch", "exportpipelines.sluice.dev"),
    ("delete", "exportpipelines.sluice.dev"),
    ("create", "workspaces.sluice.dev"),
    ("update", "connections.sluice.dev:status"),
    ("update", "workspaces.sluice.dev:finalizers"),
    ("list", "secrets"),
    ("delete", "secrets"),
    ("create", "pods"),
    ("delete", "jobs.batch"),
    ("delete", "cronjobs.batch"),
    ("delete", "configmaps"),
    ("get", "configmaps"),
    ("create", "deployments.apps"),
    ("create", "rolebindings.rbac.authorization.k8s.io"),
]


@pytest.mark.parametrize("watch", [False, True], ids=["every-namespace", "watched-namespaces"])
def test_rbac_grants_what_the_operator_does_and_nothing_more(release: Release, watch: bool) -> None:
    objects = install(release, {}, watch=watch)
    release.apply([o for o in objects if o["kind"] in ACCOUNT_KINDS])
    other = f"{release.namespace}-other"
    release.kubectl("create", "namespace", other)
    release.watched.append(other)  # removed with the others
    where = release.watched[:2] if watch else [release.namespace, other]
    for namespace in where:
        assert [a for a in DOES if not release.can(*a, namespace)] == [], namespace
        assert [a for a in NEVER if release.can(*a, namespace)] == [], namespace
    if watch:  # nothing in a namespace it does not watch
        assert [a for a in DOES if release.can(*a, other)] == []
    crd = "customresourcedefinitions.apiextensions.k8s.io"
    assert (release.can("list", crd, other), release.can("watch", crd, other)) == (True, True)
    assert release.can("delete", crd, other) is False
    assert release.can("list", "namespaces", other) is watch
    assert release.can("delete", "namespaces", other) is False
    # The Lease: created in the release namespace, then read and renewed by name only there.
    lease = f"leases.coordination.k8s.io/{LEASE_NAME}"
    assert release.can("create", "leases.coordination.k8s.io", release.namespace)
    assert release.can("get", lease, release.namespace)
    assert release.can("update", lease, release.namespace)
    assert release.can("update", "leases.coordination.k8s.io/another", release.namespace) is False
    assert release.can("get", lease, other) is False
    assert release.can("delete", lease, release.namespace) is False


def test_the_runner_service_account_can_do_nothing(release: Release) -> None:
    objects = install(release, {}, watch=True)
    release.apply([o for o in objects if o["kind"] in ACCOUNT_KINDS])
    namespace = release.watched[0]
    [environment] = [
        {v["name"]: v.get("value") for v in c["env"]}
        for c in one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    ]
    runner = environment["SLUICE_RUNNER_SERVICE_ACCOUNT"]
    release.kubectl("get", "serviceaccount", runner, "-n", namespace)

    def rules(who: str) -> str:
        listed: str = release.kubectl(
            "auth", "can-i", "--list", f"--as={who}", "-n", namespace
        ).stdout
        return listed

    identity = f"system:serviceaccount:{namespace}:{runner}"
    # Exactly what any authenticated identity may do (discovery, reviews of itself).
    assert rules(identity) == rules(f"system:serviceaccount:{namespace}:nobody")
    assert release.can("get", "secrets", namespace, who=identity) is False
    assert release.can("list", "exportpipelines.sluice.dev", namespace, who=identity) is False


# ---------------------------------------------------------------------------------------------
# A real operator, as the chart's ServiceAccount
# ---------------------------------------------------------------------------------------------


def token_kubeconfig(cluster: Cluster, release: Release, folder: Path) -> Path:
    """A kubeconfig that authenticates as the operator's ServiceAccount, with a token from
    the TokenRequest API, as a pod's projected token does."""
    account = release.operator.rsplit(":", 1)[1]
    token = release.kubectl(
        "create", "token", account, "-n", release.namespace, "--duration=1h"
    ).stdout.strip()
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    [entry] = admin["clusters"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [entry],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": account, "context": {"cluster": entry["name"], "user": account}}],
        "current-context": account,
    }
    path = folder / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("watch", [False, True], ids=["every-namespace", "watched-namespaces"])
def test_the_operator_does_its_whole_job_with_only_the_charts_rbac(
    cluster: Cluster, release: Release, watch: bool, tmp_path: Path
) -> None:
    # The examples, in a namespace the operator watches, created with them.
    examples = f"{release.namespace}-a" if watch else f"{release.namespace}-examples"
    objects = install(release, {}, watch=watch, existing=examples)
    if not watch:
        release.watched.append(examples)  # removed with the others
    workspace = ExampleNamespace(release.kubectl, tmp_path, examples)
    release.apply([o for o in objects if o["kind"] in ACCOUNT_KINDS])
    args = container_args(objects)
    operator = OperatorProcess(
        dataclasses.replace(cluster, kubeconfig=token_kubeconfig(cluster, release, tmp_path)),
        tmp_path,
        *args,
        "--lease-namespace",
        release.namespace,
        name="chart-operator",
    )
    operator.start()
    try:
        wait_ready(workspace)
        status = workspace.status("export-customers")
        # Its children, server-side applied.
        assert workspace.get("cronjob", status["cronJobName"])["metadata"]["ownerReferences"]
        assert workspace.get("configmap", status["cronJobName"])["data"]["pipeline.json"]
        # A run asked for: its Job created, its pod read once the "kubelet" finished it.
        workspace.patch(
            "export-customers",
            {"metadata": {"annotations": {builders.RUN_TOKEN_ANNOTATION: "chart"}}},
        )
        job = builders.run_now_job(workspace.get("cronjob", status["cronJobName"]), "chart", {})
        job_name = job["metadata"]["name"]
        pod = eventually(lambda: _pods_of(workspace, job_name), "the run's pod")[0]
        _terminate(workspace, pod["metadata"]["name"], "no summary")
        run = eventually(
            lambda: (
                (last := workspace.status("export-customers").get("lastRun"))
                and last.get("finishedAt")
                and last
            ),
            "the run's end recorded",
        )
        assert (run["jobName"], run["outcome"]) == (job_name, "Succeeded")
        # The Workspace's keys, read from its Secret, open its pipelines in the API.
        answer = httpx.get(
            f"{operator.api}/v1/pipelines",
            headers={"Authorization": f"Bearer {workspace.key}"},
            timeout=5,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["total"] >= 1
        events = workspace.kubectl("get", "events", "-n", examples, "-o", "json").stdout
        assert "RunRequested" in {e["reason"] for e in json.loads(events)["items"]}
        holder = release.kubectl(
            "get",
            "lease",
            LEASE_NAME,
            "-n",
            release.namespace,
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ).stdout
        assert holder
    finally:
        operator.stop()
    log = operator.log.read_text()
    assert [line for line in log.splitlines() if FORBIDDEN_IN_LOGS.search(line)] == []


def container_args(objects: list[Json]) -> list[str]:
    """The operator's arguments from the chart, but for the ports the test process chooses."""
    [operator] = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return [a for a in operator["args"] if not a.startswith(("--api-listen", "--liveness"))]
