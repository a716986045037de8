"""The Helm chart at helm/sluice: what `helm lint` and `helm template` make of it, checked
against what the operator actually reads, serves and needs.

The objects' validity for a real API server, the RBAC rules' sufficiency and the restricted Pod
Security Standard on admission are checked in tests/e2e/test_chart_server.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from sluice import __version__
from sluice.api.app import create_app
from sluice.cli import build_parser
from sluice.controller.leadership import LEASE_NAME
from sluice.controller.runner import RunnerSettings
from sluice.crds import render_crds
from sluice.store import Store
from tests.chart.rendering import (
    EVERY_OPTION,
    NAMESPACE,
    RELEASE,
    Json,
    container,
    environment,
    of_kind,
    one,
    plain_environment,
    pod_templates,
    refusal,
    render,
    runner_pod,
)
from tests.helm import CHART, helm
from tests.support import ROOT

VALUES: Json = yaml.safe_load((CHART / "values.yaml").read_text())
SCHEMA: Json = json.loads((CHART / "values.schema.json").read_text())
CHART_CRDS = CHART / "files" / "crds"
RBAC_KINDS = {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
STANDARD_LABELS = {
    "helm.sh/chart": f"sluice-{yaml.safe_load((CHART / 'Chart.yaml').read_text())['version']}",
    "app.kubernetes.io/name": "sluice",
    "app.kubernetes.io/instance": RELEASE,
    "app.kubernetes.io/version": __version__,
    "app.kubernetes.io/managed-by": "Helm",
}
POSTGRES = ("--set", "store.existingSecret=sluice-store")

needs_helm = pytest.mark.usefixtures("helm_ready")


def leaves(values: Json, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every option of a values document, as a dotted path and its value."""
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from leaves(value, path + ".")
        else:
            yield path, value


def rules_of(obj: Json) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """A Role's or ClusterRole's rules, one (group, resource, verb, names) per line."""
    return sorted(
        (group, resource, verb, tuple(rule.get("resourceNames", ())))
        for rule in obj["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    )


# ---------------------------------------------------------------------------------------------
# Chart.yaml, values.yaml, the schema and the README agree
# ---------------------------------------------------------------------------------------------


def test_the_chart_is_sluice_at_its_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert {key: chart[key] for key in ("apiVersion", "name", "type", "kubeVersion")} == {
        "apiVersion": "v2",
        "name": "sluice",
        "type": "application",
        "kubeVersion": ">=1.30.0-0",
    }
    assert chart["appVersion"] == __version__
    assert chart["description"]


def test_the_schema_describes_every_value_and_refuses_any_other() -> None:
    def check(values: Any, schema: Json, path: str) -> list[str]:
        # Kubernetes' own types (affinity, resources, peers) are in definitions: not options.
        if "$ref" in schema or "allOf" in schema:
            return []
        if schema.get("type") != "object" or "properties" not in schema:
            return []
        found = [] if schema.get("additionalProperties") is False else [f"{path}: open"]
        if isinstance(values, dict):
            found += [
                f"{path}.{k}: not in the schema" for k in values.keys() - schema["properties"]
            ]
            found += [
                f"{path}.{k}: not in values.yaml" for k in schema["properties"] - values.keys()
            ]
            for key, child in schema["properties"].items():
                if key in values:
                    found += check(values[key], child, f"{path}.{key}")
        return found

    # `global` is Helm's (values shared with subcharts): the schema allows it, values.yaml has none.
    assert check({**VALUES, "global": {}}, SCHEMA, "") == []
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"


def test_every_object_in_the_schema_is_closed() -> None:
    def open_objects(node: Any, path: str) -> Iterator[str]:
        if isinstance(node, dict):
            closed = node.get("additionalProperties") is False
            is_map = isinstance(node.get("additionalProperties"), dict) and "properties" not in node
            if node.get("type") == "object" and not (closed or is_map or path.endswith("global")):
                yield path
            for key, child in node.items():
                yield from open_objects(child, f"{path}.{key}")
        elif isinstance(node, list):
            for index, child in enumerate(node):
                yield from open_objects(child, f"{path}[{index}]")

    # Maps (labels, quantities) say what their values are; everything else is closed.
    assert list(open_objects(SCHEMA, "")) == []


def test_every_option_names_every_value() -> None:
    given = {path for path, _ in leaves(EVERY_OPTION)}
    missing = [
        path
        for path, _ in leaves(VALUES)
        if path not in given and not any(g.startswith(path + ".") for g in given)
    ]
    assert missing == []


def test_the_readme_lists_every_value_with_its_default() -> None:
    readme = (CHART / "README.md").read_text().split("\n## Values\n", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `([\w.]+)` \| `([^`]*)` \|", readme, re.MULTILINE))
    documented = {path: json.dumps(value) for path, value in leaves(VALUES)}
    assert rows.keys() == documented.keys()
    assert {path: rows[path] for path in rows} == documented


def test_the_chart_crds_are_the_generated_ones() -> None:
    rendered = render_crds()
    in_chart = {path.name: path.read_text() for path in CHART_CRDS.glob("*.yaml")}
    stale = sorted(
        k for k in rendered.keys() | in_chart.keys() if rendered.get(k) != in_chart.get(k)
    )
    assert not stale, (
        f"helm/sluice/files/crds is out of date ({stale}): run "
        "`make crds` (a chart cannot read crds/, so it keeps a copy)"
    )


# ---------------------------------------------------------------------------------------------
# helm lint
# ---------------------------------------------------------------------------------------------


@needs_helm
@pytest.mark.parametrize("values", [{}, EVERY_OPTION], ids=["defaults", "every-option"])
def test_lint_is_clean(values: Json, tmp_path: Path) -> None:
    given = tmp_path / "values.yaml"
    given.write_text(yaml.safe_dump(values))
    for kube_version in ("1.30.0", "1.37.2"):
        result = helm(
            "lint", "--strict", str(CHART), "--values", str(given), "--kube-version", kube_version
        )
        assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout, result.stdout


# ---------------------------------------------------------------------------------------------
# What a default install creates
# ---------------------------------------------------------------------------------------------


@needs_helm
def test_a_default_install_creates_these_objects() -> None:
    objects = render()
    assert sorted(
        (obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace", ""))
        for obj in objects
    ) == [
        ("ClusterRole", "sluice", ""),
        ("ClusterRoleBinding", "sluice", ""),
        ("CustomResourceDefinition", "connections.sluice.dev", ""),
        ("CustomResourceDefinition", "exportpipelines.sluice.dev", ""),
        ("CustomResourceDefinition", "workspaces.sluice.dev", ""),
        ("Deployment", "sluice", NAMESPACE),
        ("Role", "sluice-leader-election", NAMESPACE),
        ("RoleBinding", "sluice-leader-election", NAMESPACE),
        ("Service", "sluice", NAMESPACE),
        ("ServiceAccount", "sluice", NAMESPACE),
    ]
    for obj in objects:
        labels = obj["metadata"]["labels"]
        assert {key: labels.get(key) for key in STANDARD_LABELS} == STANDARD_LABELS


@needs_helm
def test_the_operator_runs_the_app_version_image_with_the_runners_on_the_same() -> None:
    objects = render()
    assert container(objects)["image"] == f"sluice:{__version__}"
    assert container(objects)["imagePullPolicy"] == "IfNotPresent"
    # What `make image` builds, and what the operator defaults its runners to.
    assert RunnerSettings.from_env(plain_environment(objects)) == RunnerSettings(
        image=f"sluice:{__version__}",
        pull_policy="IfNotPresent",
        resources=VALUES["runner"]["resources"],
        service_account=None,
    )


@needs_helm
@pytest.mark.parametrize(
    ("options", "operator_image", "runner_image", "runner_pull_policy"),
    [
        (["--set", "image.tag=0.2.0"], "sluice:0.2.0", "sluice:0.2.0", "IfNotPresent"),
        (
            [
                "--set",
                "image.repository=registry.example.com/sluice",
                "--set",
                "image.digest=sha256:" + "0" * 64,
            ],
            "registry.example.com/sluice@sha256:" + "0" * 64,
            "registry.example.com/sluice@sha256:" + "0" * 64,
            "IfNotPresent",
        ),
        (
            [
                "--set",
                "runner.image.repository=registry.example.com/runner",
                "--set",
                "image.pullPolicy=Always",
            ],
            f"sluice:{__version__}",
            f"registry.example.com/runner:{__version__}",
            "Always",
        ),
        (
            [
                "--set",
                "runner.image.repository=runner",
                "--set",
                "runner.image.tag=7-slim",
                "--set",
                "runner.image.pullPolicy=Never",
            ],
            f"sluice:{__version__}",
            "runner:7-slim",
            "Never",
        ),
    ],
)
def test_images(
    options: list[str], operator_image: str, runner_image: str, runner_pull_policy: str
) -> None:
    objects = render(*options)
    assert container(objects)["image"] == operator_image
    template = runner_pod(objects)
    [export] = template["spec"]["containers"]
    assert (export["image"], export["imagePullPolicy"]) == (runner_image, runner_pull_policy)


@needs_helm
def test_the_operator_command_is_one_the_cli_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    objects = render("--set-json", 'watchNamespaces=["marketing","sales"]')
    operator = container(objects)
    assert operator["command"] == ["sluice", "operator"]
    # The pod's environment: the chart's values, and POD_NAMESPACE from the Downward API.
    assert environment(objects)["POD_NAMESPACE"] == {
        "fieldRef": {"fieldPath": "metadata.namespace"}
    }
    assert environment(objects)["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    for name, value in {**plain_environment(objects), "POD_NAMESPACE": NAMESPACE}.items():
        monkeypatch.setenv(name, value)
    args = build_parser().parse_args(["operator", *operator["args"]])
    assert args.api_listen == "0.0.0.0:8080"
    assert args.liveness == "http://0.0.0.0:8081/healthz"
    # Replicas elect a leader through a Lease in the release namespace, where the Role is.
    assert (args.leader_elect, args.lease_namespace) == (True, NAMESPACE)
    assert args.watch_namespace == ["marketing", "sales"]
    assert args.store == "sqlite:////var/lib/sluice/store.db"
    assert not args.no_api


@needs_helm
def test_probes_and_ports_are_those_the_operator_serves() -> None:
    operator = container(render())
    ports = {port["name"]: port["containerPort"] for port in operator["ports"]}
    assert ports == {"http": 8080, "liveness": 8081}
    assert "--api-listen=0.0.0.0:8080" in operator["args"]
    assert "--liveness=http://0.0.0.0:8081/healthz" in operator["args"]
    assert operator["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "liveness"}
    assert operator["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    # The API serves them (readiness: the store answers), and the metrics a ServiceMonitor reads.
    store = Store("sqlite://")
    try:
        with TestClient(create_app(store, [])) as api:
            assert api.get("/readyz").json() == {"status": "ready"}
            assert "sluice_api_requests" in api.get("/metrics").text
    finally:
        store.close()


@needs_helm
def test_the_default_store_is_sqlite_on_an_empty_dir() -> None:
    objects = render()
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in container(objects)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert environment(objects)["SLUICE_STORE"] == "sqlite:////var/lib/sluice/store.db"
    assert volumes[mounts["/var/lib/sluice"]] == {"name": "store", "emptyDir": {}}
    assert volumes[mounts["/tmp"]] == {"name": "tmp", "emptyDir": {}}


@needs_helm
def test_a_postgresql_store_comes_from_a_secret_and_allows_replicas() -> None:
    objects = render(*POSTGRES, "--set", "replicaCount=3")
    deployment = one(objects, "Deployment")
    assert environment(objects)["SLUICE_STORE"] == {
        "secretKeyRef": {"name": "sluice-store", "key": "url"}
    }
    assert "/var/lib/sluice" not in {m["mountPath"] for m in container(objects)["volumeMounts"]}
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }


@needs_helm
@pytest.mark.parametrize("replicas", [0, 1])
def test_one_replica_is_recreated_never_doubled(replicas: int) -> None:
    deployment = one(render("--set", f"replicaCount={replicas}", *POSTGRES), "Deployment")
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


@needs_helm
def test_two_replicas_on_sqlite_are_refused() -> None:
    assert (
        "replicaCount 2 needs a store the replicas share: SQLite (store.url "
        "sqlite:////var/lib/sluice/store.db) is a file in one pod. Set store.existingSecret to a "
        "Secret holding a PostgreSQL URL, or replicaCount to 1."
    ) in refusal("--set", "replicaCount=2")


@needs_helm
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--set", "replicaConut=2"], "- at '': additional properties 'replicaConut' not allowed"),
        (
            ["--set", "store.existingSecrets=pg"],
            "- at '/store': additional properties 'existingSecrets' not allowed",
        ),
        (
            ["--set", "image.pullPolicy=Sometimes"],
            "- at '/image/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'",
        ),
        (["--set", "replicaCount=two"], "- at '/replicaCount': got string, want integer"),
        (
            ["--set-json", 'watchNamespaces=["Marketing"]'],
            "- at '/watchNamespaces/0': 'Marketing' does not match pattern",
        ),
        (
            ["--set-json", 'resources={"request":{"cpu":"1"}}'],
            "- at '/resources': additional properties 'request' not allowed",
        ),
        (
            ["--set-json", 'affinity={"nodeAffinity":{"required":[]}}'],
            "- at '/affinity/nodeAffinity': additional properties 'required' not allowed",
        ),
    ],
)
def test_a_misspelt_or_wrong_value_is_refused_by_the_schema(
    options: list[str], message: str
) -> None:
    stderr = refusal(*options)
    assert "values don't meet the specifications of the schema(s)" in stderr
    assert message in stderr


@needs_helm
def test_function_settings_reach_the_operator_only_when_given() -> None:
    assert not any(name.startswith("SLUICE_FUNCTION_") for name in environment(render()))
    given = RunnerSettings.from_env(plain_environment(render(values=EVERY_OPTION)))
    assert given.function_environment == {
        "SLUICE_FUNCTION_MEMORY": "384",
        "SLUICE_FUNCTION_SANDBOX": "off",
        "SLUICE_FUNCTION_TIMEOUT": "2.5",
        "SLUICE_FUNCTION_WORKERS": "2",
    }


@needs_helm
def test_admin_keys_come_from_their_secret_only_when_given() -> None:
    assert "SLUICE_ADMIN_API_KEYS" not in environment(render())
    given = environment(render("--set", "api.adminKeysSecret=sluice-admin"))
    assert given["SLUICE_ADMIN_API_KEYS"] == {
        "secretKeyRef": {"name": "sluice-admin", "key": "apiKeys"}
    }


@needs_helm
def test_scheduling_passthroughs() -> None:
    pod = one(render(values=EVERY_OPTION), "Deployment")["spec"]["template"]
    for key in ("nodeSelector", "tolerations", "affinity", "priorityClassName"):
        assert pod["spec"][key] == EVERY_OPTION[key]
    assert pod["metadata"]["annotations"] == EVERY_OPTION["podAnnotations"]
    assert pod["metadata"]["labels"]["team"] == "data-platform"
    assert pod["spec"]["imagePullSecrets"] == [{"name": "registry-credentials"}]
    assert container(render(values=EVERY_OPTION))["resources"] == EVERY_OPTION["resources"]


@needs_helm
def test_pod_labels_cannot_unselect_the_pods() -> None:
    deployment = one(
        render("--set", "podLabels.app\\.kubernetes\\.io/component=other"), "Deployment"
    )
    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector == {
        "app.kubernetes.io/name": "sluice",
        "app.kubernetes.io/instance": RELEASE,
        "app.kubernetes.io/component": "operator",
    }
    assert labels.items() >= selector.items()


@needs_helm
def test_the_api_service_selects_the_operator() -> None:
    objects = render()
    service = one(objects, "Service")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}
    ]
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert pod_labels.items() >= service["spec"]["selector"].items()
    other = one(render("--set", "service.type=NodePort", "--set", "service.port=9000"), "Service")
    assert (other["spec"]["type"], other["spec"]["ports"][0]["port"]) == ("NodePort", 9000)


# ---------------------------------------------------------------------------------------------
# CRDs
# ---------------------------------------------------------------------------------------------


@needs_helm
def test_the_crds_are_the_raw_ones_kept_on_uninstall() -> None:
    rendered = {
        crd["metadata"]["name"]: crd for crd in of_kind(render(), "CustomResourceDefinition")
    }
    raw = {
        crd["metadata"]["name"]: crd
        for crd in (yaml.safe_load(path.read_text()) for path in (ROOT / "crds").glob("*.yaml"))
    }
    assert rendered.keys() == raw.keys()
    for name, crd in rendered.items():
        metadata = crd["metadata"]
        assert metadata.pop("annotations") == {"helm.sh/resource-policy": "keep"}
        assert metadata["labels"] == {**raw[name]["metadata"]["labels"], **STANDARD_LABELS}
        metadata["labels"] = raw[name]["metadata"]["labels"]
        assert crd == raw[name]


@needs_helm
def test_crds_can_be_left_out() -> None:
    assert of_kind(render("--set", "crds.install=false"), "CustomResourceDefinition") == []


# ---------------------------------------------------------------------------------------------
# RBAC and ServiceAccounts
# ---------------------------------------------------------------------------------------------

#: What the operator does in a namespace it watches (README.md says which code needs each).
NAMESPACED_RULES = [
    ("", "configmaps", "create", ()),
    ("", "configmaps", "patch", ()),
    ("", "events", "create", ()),
    ("", "pods", "list", ()),
    ("", "secrets", "get", ()),
    ("batch", "cronjobs", "create", ()),
    ("batch", "cronjobs", "patch", ()),
    ("batch", "jobs", "create", ()),
    ("batch", "jobs", "list", ()),
    ("batch", "jobs", "watch", ()),
    *(
        ("sluice.dev", resource, verb, ())
        for resource in ("connections", "exportpipelines", "workspaces")
        for verb in ("list", "watch")
    ),
    *(
        ("sluice.dev", f"{resource}/status", "patch", ())
        for resource in ("connections", "exportpipelines", "workspaces")
    ),
    ("sluice.dev", "exportpipelines/finalizers", "update", ()),
]
CRD_RULES = [
    ("apiextensions.k8s.io", "customresourcedefinitions", "list", ()),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch", ()),
]
NAMESPACE_RULES = [("", "namespaces", "list", ()), ("", "namespaces", "watch", ())]
LEASE_RULES = [
    ("coordination.k8s.io", "leases", "create", ()),
    ("coordination.k8s.io", "leases", "get", (LEASE_NAME,)),
    ("coordination.k8s.io", "leases", "update", (LEASE_NAME,)),
]


def bound(objects: list[Json]) -> dict[tuple[str, str, str], list[Json]]:
    """Each binding's (kind, namespace, role) and its subjects."""
    return {
        (obj["kind"], obj["metadata"].get("namespace", ""), obj["roleRef"]["name"]): obj["subjects"]
        for obj in objects
        if obj["kind"] in ("RoleBinding", "ClusterRoleBinding")
    }


OPERATOR = [{"kind": "ServiceAccount", "name": "sluice", "namespace": NAMESPACE}]


@needs_helm
def test_cluster_wide_rbac_is_what_the_operator_does() -> None:
    objects = render()
    assert rules_of(one(objects, "ClusterRole")) == sorted(NAMESPACED_RULES + CRD_RULES)
    lease_role = one(objects, "Role")
    assert lease_role["metadata"]["namespace"] == NAMESPACE
    assert rules_of(lease_role) == LEASE_RULES
    assert bound(objects) == {
        ("ClusterRoleBinding", "", "sluice"): OPERATOR,
        ("RoleBinding", NAMESPACE, "sluice-leader-election"): OPERATOR,
    }


@needs_helm
def test_watched_namespaces_get_roles_and_nothing_namespaced_is_granted_cluster_wide() -> None:
    objects = render("--set-json", 'watchNamespaces=["a","b"]')
    roles = {
        (r["metadata"]["namespace"], r["metadata"]["name"]): r for r in of_kind(objects, "Role")
    }
    assert sorted(roles) == [
        ("a", "sluice"),
        ("b", "sluice"),
        (NAMESPACE, "sluice-leader-election"),
    ]
    assert (
        rules_of(roles["a", "sluice"]) == rules_of(roles["b", "sluice"]) == sorted(NAMESPACED_RULES)
    )
    assert rules_of(one(objects, "ClusterRole")) == sorted(CRD_RULES + NAMESPACE_RULES)
    assert bound(objects) == {
        ("RoleBinding", "a", "sluice"): OPERATOR,
        ("RoleBinding", "b", "sluice"): OPERATOR,
        ("ClusterRoleBinding", "", "sluice"): OPERATOR,
        ("RoleBinding", NAMESPACE, "sluice-leader-election"): OPERATOR,
    }


@needs_helm
def test_no_rbac_objects_unless_asked() -> None:
    for values in ({}, {"watchNamespaces": ["a"]}):
        objects = render("--set", "rbac.create=false", values={**values})
        assert {obj["kind"] for obj in objects} & RBAC_KINDS == set()


@needs_helm
def test_the_operator_service_account_options() -> None:
    objects = render(
        "--set", "serviceAccount.name=robot", "--set-json", 'serviceAccount.annotations={"a":"b"}'
    )
    account = one(objects, "ServiceAccount")
    assert (account["metadata"]["name"], account["metadata"]["annotations"]) == (
        "robot",
        {"a": "b"},
    )
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "robot"
    assert one(objects, "ClusterRoleBinding")["subjects"][0]["name"] == "robot"
    existing = render("--set", "serviceAccount.create=false")
    assert of_kind(existing, "ServiceAccount") == []
    assert (
        one(existing, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "default"
    )


@needs_helm
def test_runner_service_accounts_live_in_the_watched_namespaces_without_rbac_or_token() -> None:
    objects = render(
        "--set-json",
        'watchNamespaces=["a","b"]',
        "--set-json",
        'imagePullSecrets=[{"name":"pull"}]',
    )
    runners = [
        sa for sa in of_kind(objects, "ServiceAccount") if sa["metadata"]["name"] == "sluice-runner"
    ]
    assert sorted(sa["metadata"]["namespace"] for sa in runners) == ["a", "b"]
    for account in runners:
        assert account["automountServiceAccountToken"] is False
        assert account["imagePullSecrets"] == [{"name": "pull"}]
    assert all(
        s["name"] != "sluice-runner" for subjects in bound(objects).values() for s in subjects
    )
    assert runner_pod(objects)["spec"]["serviceAccountName"] == "sluice-runner"


@needs_helm
def test_watching_every_namespace_the_runners_keep_the_default_account_unless_named() -> None:
    objects = render()
    assert [sa["metadata"]["name"] for sa in of_kind(objects, "ServiceAccount")] == ["sluice"]
    assert "serviceAccountName" not in runner_pod(objects)["spec"]
    named = render("--set", "runner.serviceAccount.name=export")
    assert [sa["metadata"]["name"] for sa in of_kind(named, "ServiceAccount")] == ["sluice"]
    assert runner_pod(named)["spec"]["serviceAccountName"] == "export"


# ---------------------------------------------------------------------------------------------
# Pod security
# ---------------------------------------------------------------------------------------------


def restricted_problems(template: Json) -> list[str]:
    """What breaks the restricted Pod Security Standard (plus a read-only root file system with
    a writable /tmp), in one pod template."""
    spec = template["spec"]
    found = []
    pod = spec.get("securityContext", {})
    expected_pod = {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "fsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    found += [f"pod {key}" for key, value in expected_pod.items() if pod.get(key) != value]
    found += [f"pod {key}" for key in ("hostNetwork", "hostPID", "hostIPC") if spec.get(key)]
    volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
    found += [f"volume {name}" for name, volume in volumes.items() if "hostPath" in volume]
    for each in spec["containers"] + spec.get("initContainers", []):
        context = each.get("securityContext", {})
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(f"{each['name']} allowPrivilegeEscalation")
        if context.get("capabilities") != {"drop": ["ALL"]}:
            found.append(f"{each['name']} capabilities")
        if context.get("readOnlyRootFilesystem") is not True:
            found.append(f"{each['name']} readOnlyRootFilesystem")
        if context.get("privileged") or each.get("ports", [{}])[0].get("hostPort"):
            found.append(f"{each['name']} privileged or host port")
        tmp = [m["name"] for m in each.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
        if not tmp or "emptyDir" not in volumes[tmp[0]]:
            found.append(f"{each['name']} /tmp")
    return found


@needs_helm
@pytest.mark.parametrize("values", [{}, EVERY_OPTION], ids=["defaults", "every-option"])
def test_every_pod_meets_the_restricted_standard(values: Json) -> None:
    objects = render(values=values)
    templates = [*pod_templates(objects), runner_pod(objects)]
    assert len(templates) == 2
    assert {id(t): restricted_problems(t) for t in templates} == {id(t): [] for t in templates}
    assert one(objects, "Deployment")["spec"]["template"]["spec"]["enableServiceLinks"] is False


# ---------------------------------------------------------------------------------------------
# ServiceMonitor and NetworkPolicy
# ---------------------------------------------------------------------------------------------

SERVICE_MONITOR_API = ("--api-versions", "monitoring.coreos.com/v1/ServiceMonitor")


@needs_helm
def test_a_service_monitor_only_where_prometheus_operator_is() -> None:
    enabled = ("--set", "serviceMonitor.enabled=true", "--set", "serviceMonitor.labels.release=kps")
    assert of_kind(render(*enabled), "ServiceMonitor") == []
    assert of_kind(render(*SERVICE_MONITOR_API), "ServiceMonitor") == []
    objects = render(*enabled, *SERVICE_MONITOR_API)
    monitor = one(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["spec"]["endpoints"] == [
        {"port": "http", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    ]
    service = one(objects, "Service")
    assert (
        service["metadata"]["labels"].items() >= monitor["spec"]["selector"]["matchLabels"].items()
    )
    assert "http" in {port["name"] for port in service["spec"]["ports"]}


def egress_ports(rule: Json) -> set[tuple[Any, str]]:
    return {(port["port"], port.get("protocol", "TCP")) for port in rule.get("ports", [])}


DNS = {(53, "UDP"), (53, "TCP")}


@needs_helm
def test_network_policies() -> None:
    assert of_kind(render(), "NetworkPolicy") == []
    objects = render("--set", "networkPolicy.enabled=true")
    operator = one(objects, "NetworkPolicy")
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert pod_labels.items() >= operator["spec"]["podSelector"]["matchLabels"].items()
    assert operator["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert operator["spec"]["ingress"] == []  # no one but port-forward reaches the API
    assert [egress_ports(rule) for rule in operator["spec"]["egress"]] == [
        {(443, "TCP"), (6443, "TCP")},
        DNS,
    ]
    assert all("to" not in rule for rule in operator["spec"]["egress"])

    objects = render(values=EVERY_OPTION)
    policies = {
        (p["metadata"]["namespace"], p["metadata"]["name"]): p
        for p in of_kind(objects, "NetworkPolicy")
    }
    assert sorted(policies) == [
        ("marketing", "sluice-operator-export"),
        ("sales", "sluice-operator-export"),
        (NAMESPACE, "sluice-operator"),
    ]
    operator = policies[NAMESPACE, "sluice-operator"]["spec"]
    assert operator["ingress"] == [
        {
            "from": EVERY_OPTION["networkPolicy"]["apiIngressFrom"],
            "ports": [{"port": "http", "protocol": "TCP"}],
        }
    ]
    assert operator["egress"] == [
        {
            "ports": [{"port": 6443, "protocol": "TCP"}],
            "to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}, {"ipBlock": {"cidr": "192.168.10.0/24"}}],
        },
        {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
        *EVERY_OPTION["networkPolicy"]["operatorEgress"],
    ]
    export = policies["marketing", "sluice-operator-export"]["spec"]
    assert export["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in export  # export pods serve nothing
    assert export["egress"][1:] == EVERY_OPTION["networkPolicy"]["runnerEgress"]
    assert egress_ports(export["egress"][0]) == DNS
    runner_labels = runner_pod(objects)["metadata"]["labels"]
    assert runner_labels.items() >= export["podSelector"]["matchLabels"].items()


# ---------------------------------------------------------------------------------------------
# NOTES.txt and docs/install.md
# ---------------------------------------------------------------------------------------------


@needs_helm
def test_the_notes_say_how_to_reach_the_api_and_apply_the_examples() -> None:
    notes = helm(
        "install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--dry-run=client"
    ).stdout.split("NOTES:\n", 1)[1]
    for line in (
        f"kubectl rollout status deployment/sluice -n {NAMESPACE}",
        "kubectl create namespace marketing",
        "kubectl apply -f examples/",
        "kubectl wait --for=condition=Ready exportpipeline --all -n marketing",
        f"kubectl port-forward -n {NAMESPACE} svc/sluice 8080:8080",
        "curl -H 'Authorization: Bearer api_marketing_dashboard_change_me' "
        "http://127.0.0.1:8080/v1/pipelines",
    ):
        assert f"\n  {line}\n" in notes
    # The key in the curl line is the examples' own.
    assert "api_marketing_dashboard_change_me" in (ROOT / "examples" / "workspace.yaml").read_text()


def test_the_install_guide_names_only_values_that_exist() -> None:
    # The transcripts show misspelt values on purpose.
    guide = re.sub(
        r"^```console\n.*?^```", "", (ROOT / "docs" / "install.md").read_text(), flags=re.M | re.S
    )
    named = set(re.findall(r"--set(?:-json|-string)? '?([\w.]+)=", guide))
    known = {path for path, _ in leaves(VALUES)}
    assert "watchNamespaces" in named
    assert named <= known
