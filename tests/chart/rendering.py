"""The chart rendered by the cached Helm (tests/helm.py), as the chart's tests look at it."""

from __future__ import annotations

import functools
import json
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from sluice.controller.runner import RunnerSettings
from tests.cluster import ClusterError, running_under_ci
from tests.helm import CHART, build_helm, helm, helm_unavailable_reason
from tests.unit.test_builders import build_cron_job, seed_pipeline

Json = dict[str, Any]

RELEASE = "sluice"
NAMESPACE = "sluice-system"

#: Values giving every option of values.yaml (a test keeps the two in step), as a user running
#: several replicas on PostgreSQL in two namespaces might; everything that can be rendered is.
EVERY_OPTION: Json = {
    "nameOverride": "reverse-etl",
    "fullnameOverride": "sluice-operator",
    "image": {
        "repository": "registry.example.com/data/sluice",
        "tag": "0.1.0-rc1",
        "digest": "sha256:" + "ab" * 32,
        "pullPolicy": "Always",
    },
    "imagePullSecrets": [{"name": "registry-credentials"}],
    "replicaCount": 2,
    "watchNamespaces": ["marketing", "sales"],
    "crds": {"install": True},
    "store": {
        "url": "postgresql+psycopg://sluice@postgres.example.internal/sluice",
        "existingSecret": "sluice-store",
        "secretKey": "dsn",
    },
    "api": {"adminKeysSecret": "sluice-admin-keys", "adminKeysSecretKey": "keys"},
    "service": {
        "type": "NodePort",
        "port": 9090,
        "annotations": {"example.com/owner": "data-platform"},
    },
    "serviceAccount": {
        "create": True,
        "name": "sluice-operator-identity",
        "annotations": {"example.com/owner": "data-platform"},
    },
    "rbac": {"create": True},
    "resources": {"requests": {"cpu": "200m", "memory": "384Mi"}, "limits": {"memory": "768Mi"}},
    "podAnnotations": {"example.com/scrape": "true"},
    "podLabels": {"team": "data-platform"},
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [
        {"key": "dedicated", "operator": "Equal", "value": "operators", "effect": "NoSchedule"}
    ],
    "affinity": {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {
                            "matchLabels": {"app.kubernetes.io/component": "operator"}
                        },
                    },
                }
            ]
        }
    },
    "priorityClassName": "system-cluster-critical",
    "runner": {
        "image": {
            "repository": "registry.example.com/data/sluice-runner",
            "tag": "0.1.0-rc2",
            "digest": "sha256:" + "cd" * 32,
            "pullPolicy": "IfNotPresent",
        },
        "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}},
        "serviceAccount": {
            "create": True,
            "name": "sluice-export",
            "annotations": {
                "iam.gke.io/gcp-service-account": "export@example.iam.gserviceaccount.com"
            },
        },
        "functions": {"timeoutSeconds": 2.5, "memoryMiB": 384, "workers": 2, "sandbox": False},
    },
    "serviceMonitor": {
        "enabled": True,
        "interval": "1m",
        "scrapeTimeout": "20s",
        "labels": {"release": "prometheus"},
    },
    "networkPolicy": {
        "enabled": True,
        "apiIngressFrom": [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
        ],
        "kubeApiServer": {"cidrs": ["10.0.0.1/32", "192.168.10.0/24"], "ports": [6443]},
        "operatorEgress": [
            {
                "to": [{"ipBlock": {"cidr": "10.0.12.0/24"}}],
                "ports": [{"port": 5432, "protocol": "TCP"}],
            }
        ],
        "runnerEgress": [
            {"ports": [{"port": 443, "protocol": "TCP"}]},
            {
                "to": [{"ipBlock": {"cidr": "10.0.20.0/24"}}],
                "ports": [{"port": 5432, "protocol": "TCP"}],
            },
        ],
    },
}


def require_helm() -> None:
    """Build Helm into the cache unless it is there; skip when it cannot be had, except under
    CI (the `CI` environment variable set), where that fails."""
    reason = helm_unavailable_reason()
    if reason is None:
        try:
            build_helm()
        except ClusterError as error:
            reason = f"Helm could not be built: {error}"
    if reason is not None:
        if running_under_ci():
            pytest.fail(f"Helm is required under CI, but: {reason}", pytrace=False)
        pytest.skip(reason)


def run_template(
    *options: str,
    values: Mapping[str, Any] | None = None,
    namespace: str = NAMESPACE,
    release: str = RELEASE,
) -> subprocess.CompletedProcess[str]:
    """``helm template`` of the chart as ``release`` in ``namespace``, with ``values`` (a
    values file) and ``options`` (e.g. ``--set``)."""
    return _template(options, json.dumps(values, sort_keys=True), namespace, release)


@functools.cache
def _template(
    options: tuple[str, ...], values: str, namespace: str, release: str
) -> subprocess.CompletedProcess[str]:
    # Cached: many tests render the defaults, and each Helm run costs about a second.
    with tempfile.TemporaryDirectory() as folder:
        given = []
        if values != "null":
            path = Path(folder) / "values.yaml"
            path.write_text(yaml.safe_dump(json.loads(values)))
            given = ["--values", str(path)]
        return helm(
            "template", release, str(CHART), "--namespace", namespace, *given, *options, check=False
        )


def render(
    *options: str,
    values: Mapping[str, Any] | None = None,
    namespace: str = NAMESPACE,
    release: str = RELEASE,
) -> list[Json]:
    """The objects ``helm template`` renders (fresh ones: tests may change them); fails the
    test with Helm's message when it refuses."""
    result = run_template(*options, values=values, namespace=namespace, release=release)
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def refusal(*options: str, values: Mapping[str, Any] | None = None) -> str:
    """Helm's message when it refuses to render."""
    result = run_template(*options, values=values)
    assert result.returncode != 0, "Helm rendered what it should refuse"
    return result.stderr


def of_kind(objects: list[Json], kind: str) -> list[Json]:
    return [obj for obj in objects if obj["kind"] == kind]


def one(objects: list[Json], kind: str, name: str | None = None) -> Json:
    """The only object of ``kind`` (named ``name``, when given)."""
    found = [obj for obj in of_kind(objects, kind) if name in (None, obj["metadata"]["name"])]
    assert len(found) == 1, f"{len(found)} {kind} named {name}: {[o['metadata'] for o in found]}"
    return found[0]


def container(objects: list[Json]) -> Json:
    """The operator's container."""
    containers: list[Json] = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["operator"]
    return containers[0]


def environment(objects: list[Json]) -> dict[str, Any]:
    """The operator's environment: each variable's value, or its valueFrom."""
    return {
        variable["name"]: variable.get("value", variable.get("valueFrom"))
        for variable in container(objects)["env"]
    }


def pod_templates(objects: list[Json]) -> list[Json]:
    """Every pod template the chart renders (metadata and spec), whatever holds it."""
    templates = []
    for obj in objects:
        spec = obj.get("spec") or {}
        spec = (spec.get("jobTemplate") or {}).get("spec", spec)
        if isinstance(spec.get("template"), dict) and "spec" in spec["template"]:
            templates.append(spec["template"])
    return templates


def plain_environment(objects: list[Json]) -> dict[str, str]:
    return {k: v for k, v in environment(objects).items() if isinstance(v, str)}


def runner_pod(objects: list[Json]) -> Json:
    """The pod template of the export CronJob the operator builds, with the chart's settings,
    for the examples' seed pipeline."""
    cron_job = build_cron_job(
        seed_pipeline(), settings=RunnerSettings.from_env(plain_environment(objects))
    )
    template: Json = cron_job["spec"]["jobTemplate"]["spec"]["template"]
    return template
