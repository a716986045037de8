"""The objects the operator owns for a pipeline: its export config, ConfigMap, CronJob and
run-now Jobs, and the runner settings they are built with."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from sluice import __version__
from sluice.apps.catalog import CONNECTORS
from sluice.controller.builders import (
    CHILD_NAME_LIMIT,
    child_name,
    config_hash,
    config_map,
    config_text,
    cron_job,
    export_config,
    labels,
    owner_reference,
    run_now_job,
)
from sluice.controller.runner import RunnerSettings
from sluice.installation import INSTALLED
from sluice.manifests import read_manifests
from sluice.model.connection import Connection, validate_connection
from sluice.model.pipeline import Pipeline, pipeline_to_api, validate_pipeline
from sluice.model.resources import validate_resources
from sluice.model.workspace import Workspace, validate_workspace
from tests.support import (
    EXAMPLES,
    ROOT,
    SEED_ID,
    Edit,
    drop,
    example_spec,
    marketing_context,
    put,
    seed_spec,
    validate,
)

OWNER = owner_reference("export-customers", "6f1d6c3e-0000-4000-8000-000000000001")
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])?)?\Z")
SEED_LABELS = {
    "app.kubernetes.io/name": "sluice",
    "app.kubernetes.io/managed-by": "sluice",
    "app.kubernetes.io/component": "export",
    "sluice.dev/pipeline": "export-customers",
    "sluice.dev/pipeline-id": str(SEED_ID),
}
SEED_CHILD = child_name("export-customers", SEED_ID)


def marketing_workspace() -> Workspace:
    workspace = marketing_context().workspace
    assert workspace is not None
    return workspace


def hubspot_connection() -> Connection:
    connection = marketing_context().connections[0].connection
    assert connection is not None
    return connection


def seed_pipeline(*edits: Edit) -> Pipeline:
    spec = seed_spec()
    for edit in edits:
        edit(spec)
    return validate(spec)


def build_cron_job(
    pipeline: Pipeline,
    workspace: Workspace | None = None,
    connection: Connection | None = None,
    settings: RunnerSettings | None = None,
) -> dict[str, Any]:
    workspace = workspace or marketing_workspace()
    connection = connection or hubspot_connection()
    config = export_config(pipeline, workspace, connection)
    return cron_job(
        pipeline,
        workspace,
        connection,
        config_hash=config_hash(config),
        settings=settings or RunnerSettings(),
        owner=OWNER,
    )


def pod_spec(cron: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec


def container(cron: dict[str, Any]) -> dict[str, Any]:
    [export] = pod_spec(cron)["containers"]
    assert isinstance(export, dict)
    return export


# ---------------------------------------------------------------------------------------------
# The export config
# ---------------------------------------------------------------------------------------------


def test_the_seed_export_config() -> None:
    seed = seed_pipeline()
    config = export_config(seed, marketing_workspace(), hubspot_connection())
    body = pipeline_to_api(seed)
    del body["running"]
    profile_schema = json.loads(json.dumps(config["workspace"]["profileSchema"]))
    assert profile_schema == example_spec("Workspace", "marketing")["profileSchema"]
    assert config == {
        "version": 1,
        "pipeline": body,
        "namespace": "marketing",
        "resourceName": "export-customers",
        "workspace": {
            "warehouse": {
                "type": "PostgreSQL",
                "path": None,
                "profilesTable": "profiles",
                "profileIdColumn": "_kpid",
                "dsnEnv": "SLUICE_WAREHOUSE_DSN",
            },
            "profileSchema": profile_schema,
        },
        "connection": {
            "id": 230527183,
            "connector": "hubspot",
            "settings": {},
            "credentialsDir": "/etc/sluice/credentials",
        },
    }


def test_config_text_is_compact_utf8_json_and_the_hash_is_its_sha256() -> None:
    config = export_config(
        seed_pipeline(put(("name",), "Export clients — été")),
        marketing_workspace(),
        hubspot_connection(),
    )
    text = config_text(config)
    assert json.loads(text) == config
    assert '"name":"Export clients — été"' in text
    assert text.startswith('{"version":1,"pipeline":{"id":705981339,"name":"Export clients')
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", config_hash(config))
    assert config_hash(config) == config_hash(json.loads(text))


def test_a_warehouse_without_dsn_and_a_connection_without_credentials() -> None:
    duckdb_spec = example_spec("Workspace", "marketing")
    duckdb_spec["warehouse"] = {"type": "DuckDB", "path": "/data/warehouse.duckdb"}
    duckdb = validate_workspace("marketing", "marketing", duckdb_spec)
    connection_spec = example_spec("Connection", "hubspot")
    del connection_spec["credentialsSecretRef"]
    anonymous = validate_connection("marketing", "hubspot", connection_spec, CONNECTORS)
    config = export_config(seed_pipeline(), duckdb, anonymous)
    assert config["workspace"]["warehouse"]["path"] == "/data/warehouse.duckdb"
    assert config["workspace"]["warehouse"]["dsnEnv"] is None
    assert config["connection"]["credentialsDir"] is None
    cron = build_cron_job(seed_pipeline(), duckdb, anonymous)
    assert "env" not in container(cron)
    assert [v["name"] for v in pod_spec(cron)["volumes"]] == ["config", "tmp"]
    assert [m["name"] for m in container(cron)["volumeMounts"]] == ["config", "tmp"]


# ---------------------------------------------------------------------------------------------
# The seed's objects
# ---------------------------------------------------------------------------------------------


def test_the_seed_config_map() -> None:
    config = export_config(seed_pipeline(), marketing_workspace(), hubspot_connection())
    assert config_map(seed_pipeline(), config, OWNER) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": SEED_CHILD,
            "namespace": "marketing",
            "labels": SEED_LABELS,
            "ownerReferences": [OWNER],
            "annotations": {"sluice.dev/config-hash": config_hash(config)},
        },
        "data": {"pipeline.json": config_text(config)},
    }


def test_the_seed_cron_job() -> None:
    seed = seed_pipeline()
    digest = config_hash(export_config(seed, marketing_workspace(), hubspot_connection()))
    cron = build_cron_job(seed)

    # The settings that matter, one by one.
    spec = cron["spec"]
    assert SEED_CHILD == "sluice-export-customers-527b5f"
    assert spec["schedule"] == "15 * * * *"  # every hour, at minute 15
    assert spec["timeZone"] == "Etc/UTC"
    assert spec["suspend"] is False
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] == 1800
    job = spec["jobTemplate"]["spec"]
    assert job["activeDeadlineSeconds"] == 3600
    assert job["template"]["metadata"]["annotations"] == {"sluice.dev/config-hash": digest}
    pod = pod_spec(cron)
    assert pod["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in pod
    export = container(cron)
    assert export["image"] == f"sluice:{__version__}"
    assert export["command"] == ["sluice", "export", "--config", "/etc/sluice/config/pipeline.json"]
    assert export["env"] == [
        {
            "name": "SLUICE_WAREHOUSE_DSN",
            "valueFrom": {"secretKeyRef": {"name": "warehouse", "key": "dsn"}},
        }
    ]

    # And the whole object.
    assert cron == {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": SEED_CHILD,
            "namespace": "marketing",
            "labels": SEED_LABELS,
            "ownerReferences": [OWNER],
        },
        "spec": {
            "schedule": "15 * * * *",
            "timeZone": "Etc/UTC",
            "suspend": False,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 1800,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {
                    "labels": SEED_LABELS,
                    "annotations": {"sluice.dev/config-hash": digest},
                },
                "spec": {
                    "backoffLimit": 1,
                    "activeDeadlineSeconds": 3600,
                    "ttlSecondsAfterFinished": 86400,
                    "podFailurePolicy": {
                        "rules": [
                            {
                                "action": "Ignore",
                                "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
                            }
                        ]
                    },
                    "template": {
                        "metadata": {
                            "labels": SEED_LABELS,
                            "annotations": {"sluice.dev/config-hash": digest},
                        },
                        "spec": {
                            "restartPolicy": "Never",
                            "automountServiceAccountToken": False,
                            "securityContext": {
                                "runAsNonRoot": True,
                                "runAsUser": 65532,
                                "runAsGroup": 65532,
                                "fsGroup": 65532,
                                "seccompProfile": {"type": "RuntimeDefault"},
                            },
                            "containers": [
                                {
                                    "name": "export",
                                    "image": f"sluice:{__version__}",
                                    "imagePullPolicy": "IfNotPresent",
                                    "command": [
                                        "sluice",
                                        "export",
                                        "--config",
                                        "/etc/sluice/config/pipeline.json",
                                    ],
                                    "resources": {
                                        "requests": {"cpu": "100m", "memory": "256Mi"},
                                        "limits": {"memory": "1Gi"},
                                    },
                                    "terminationMessagePath": "/dev/termination-log",
                                    "terminationMessagePolicy": "FallbackToLogsOnError",
                                    "securityContext": {
                                        "allowPrivilegeEscalation": False,
                                        "readOnlyRootFilesystem": True,
                                        "capabilities": {"drop": ["ALL"]},
                                    },
                                    "volumeMounts": [
                                        {
                                            "name": "config",
                                            "mountPath": "/etc/sluice/config",
                                            "readOnly": True,
                                        },
                                        {
                                            "name": "credentials",
                                            "mountPath": "/etc/sluice/credentials",
                                            "readOnly": True,
                                        },
                                        {"name": "tmp", "mountPath": "/tmp"},
                                    ],
                                    "env": [
                                        {
                                            "name": "SLUICE_WAREHOUSE_DSN",
                                            "valueFrom": {
                                                "secretKeyRef": {"name": "warehouse", "key": "dsn"}
                                            },
                                        }
                                    ],
                                }
                            ],
                            "volumes": [
                                {
                                    "name": "config",
                                    "configMap": {
                                        "name": SEED_CHILD,
                                        "items": [
                                            {"key": "pipeline.json", "path": "pipeline.json"}
                                        ],
                                    },
                                },
                                {
                                    "name": "credentials",
                                    "secret": {
                                        "secretName": "hubspot-credentials",
                                        "defaultMode": 0o440,
                                    },
                                },
                                {"name": "tmp", "emptyDir": {}},
                            ],
                        },
                    },
                },
            },
        },
    }


def test_the_pod_finds_what_the_config_points_to() -> None:
    """The config file, the DSN variable and the credentials folder the export config names
    are where the pod puts them, and no mount hides inside another."""
    config = export_config(seed_pipeline(), marketing_workspace(), hubspot_connection())
    export = container(build_cron_job(seed_pipeline()))
    mounts = {m["name"]: m["mountPath"] for m in export["volumeMounts"]}
    config_path = export["command"][export["command"].index("--config") + 1]
    assert config_path == f"{mounts['config']}/pipeline.json"
    assert config["connection"]["credentialsDir"] == mounts["credentials"]
    assert [e["name"] for e in export["env"]] == [config["workspace"]["warehouse"]["dsnEnv"]]
    for outer in mounts.values():
        for inner in mounts.values():
            assert not inner.startswith(outer + "/"), f"{inner} is mounted inside {outer}"


def test_no_secret_value_reaches_the_objects() -> None:
    secret_values = [
        value for values in read_manifests([EXAMPLES]).secrets.values() for value in values.values()
    ]
    assert any("change-me" in value for value in secret_values)  # the examples hold some
    seed = seed_pipeline()
    config = export_config(seed, marketing_workspace(), hubspot_connection())
    cron = build_cron_job(seed)
    objects = [config_map(seed, config, OWNER), cron, run_now_job(cron, "now", OWNER)]
    text = json.dumps(objects, ensure_ascii=False)
    for value in secret_values:
        assert value.strip() not in text


# ---------------------------------------------------------------------------------------------
# Suspension, schedule and config changes
# ---------------------------------------------------------------------------------------------


def test_a_disabled_pipeline_has_a_suspended_cron_job_on_its_schedule() -> None:
    cron = build_cron_job(seed_pipeline(put(("enabled",), False)))
    assert cron["spec"]["suspend"] is True
    assert cron["spec"]["schedule"] == "15 * * * *"


def test_an_unscheduled_pipeline_has_a_suspended_daily_cron_job() -> None:
    """Suspended, the CronJob still holds the template run-now Jobs are made from."""
    cron = build_cron_job(seed_pipeline(drop(("schedulePeriod",))))
    assert cron["spec"]["suspend"] is True
    assert cron["spec"]["schedule"] == "15 0 * * *"
    assert cron["spec"]["startingDeadlineSeconds"] == 3600
    assert cron["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 86400


@pytest.mark.parametrize(
    ("period", "starting_deadline", "active_deadline"),
    [("5m", 150, 300), ("30m", 900, 1800), ("2h", 3600, 7200), ("24h", 3600, 86400)],
)
def test_deadlines_follow_the_period(
    period: str, starting_deadline: int, active_deadline: int
) -> None:
    spec = build_cron_job(seed_pipeline(put(("schedulePeriod",), period)))["spec"]
    assert spec["startingDeadlineSeconds"] == starting_deadline
    assert spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] == active_deadline


def test_a_mapping_change_changes_the_config_hash_and_the_pod_template() -> None:
    before = seed_pipeline()
    after = seed_pipeline(
        put(("transformation", "mapping", "contact.firstname"), "upper(first_name)")
    )
    hashes = [
        config_hash(export_config(p, marketing_workspace(), hubspot_connection()))
        for p in (before, after)
    ]
    assert hashes[0] != hashes[1]
    for p, digest in zip((before, after), hashes, strict=True):
        template = build_cron_job(p)["spec"]["jobTemplate"]["spec"]["template"]
        assert template["metadata"]["annotations"]["sluice.dev/config-hash"] == digest


def test_the_same_pipeline_always_gives_the_same_objects() -> None:
    assert build_cron_job(seed_pipeline()) == build_cron_job(seed_pipeline())
    assert config_text(
        export_config(seed_pipeline(), marketing_workspace(), hubspot_connection())
    ) == config_text(export_config(seed_pipeline(), marketing_workspace(), hubspot_connection()))


# ---------------------------------------------------------------------------------------------
# Names and labels
# ---------------------------------------------------------------------------------------------


def test_owner_reference() -> None:
    assert owner_reference("export-customers", "uid-1") == {
        "apiVersion": "sluice.dev/v1",
        "kind": "ExportPipeline",
        "name": "export-customers",
        "uid": "uid-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_labels() -> None:
    assert labels(seed_pipeline()) == SEED_LABELS


@pytest.mark.parametrize(
    ("resource_name", "cut"),
    [
        ("export-customers", "export-customers"),
        ("eu.customers", "eu-customers"),
        ("a" * 36 + "bcd", "a" * 36),
        # The cut ends on a dash: it goes, so no name has "--" before its suffix.
        ("a" * 35 + "-" + "b" * 217, "a" * 35),
        ("x" * 253, "x" * 36),
    ],
)
def test_child_name(resource_name: str, cut: str) -> None:
    name = child_name(resource_name, SEED_ID)
    assert re.fullmatch(rf"sluice-{cut}-[0-9a-f]{{6}}", name)
    assert DNS_LABEL.match(name)
    assert len(name) <= CHILD_NAME_LIMIT <= 52


def test_child_names_of_pipelines_cut_to_the_same_prefix_differ() -> None:
    assert child_name("x" * 60 + "-eu", 1) != child_name("x" * 60 + "-us", 2)


def test_every_name_and_label_fits_for_the_longest_resource_name() -> None:
    # 253 characters; the 63rd, where the name label is cut, is a dot, which cannot end a label.
    longest = "ee" + ".e" * 125 + "e"
    assert len(longest) == 253 and longest[62] == "."
    long_pipeline = validate_pipeline("marketing", longest, seed_spec(), 7, marketing_context())
    config = export_config(long_pipeline, marketing_workspace(), hubspot_connection())
    cron = build_cron_job(long_pipeline)
    job = run_now_job(cron, "2025-06-01T12:00:00Z", OWNER)
    assert len(config_map(long_pipeline, config, OWNER)["metadata"]["name"]) <= 253
    assert len(cron["metadata"]["name"]) <= 52
    assert len(job["metadata"]["name"]) <= 63
    assert DNS_LABEL.match(job["metadata"]["name"])
    for obj in (cron, cron["spec"]["jobTemplate"], job):
        for value in obj["metadata"]["labels"].values():
            assert len(value) <= 63 and LABEL_VALUE.match(value), value
    assert labels(long_pipeline)["sluice.dev/pipeline"] == longest[:62]


# ---------------------------------------------------------------------------------------------
# Run now
# ---------------------------------------------------------------------------------------------


def test_a_run_now_job_is_the_cron_jobs_template_under_a_name_from_the_token() -> None:
    cron = build_cron_job(seed_pipeline())
    token = "2025-06-01T12:00:00Z"
    job = run_now_job(cron, token, OWNER)
    template = cron["spec"]["jobTemplate"]
    token_hash = job["metadata"]["labels"]["sluice.dev/run-requested-at-hash"]
    assert re.fullmatch(r"[0-9a-f]{8}", token_hash)
    assert job == {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": f"{SEED_CHILD}-run-{token_hash}",
            "namespace": "marketing",
            "labels": {**SEED_LABELS, "sluice.dev/run-requested-at-hash": token_hash},
            "ownerReferences": [OWNER],
            "annotations": {
                **template["metadata"]["annotations"],
                "sluice.dev/run-requested-at": token,
            },
        },
        "spec": template["spec"],
    }
    assert job["spec"]["ttlSecondsAfterFinished"] == 86400


def test_run_now_job_names_depend_on_the_token_only() -> None:
    cron = build_cron_job(seed_pipeline())
    first = run_now_job(cron, "token-1", OWNER)["metadata"]["name"]
    assert run_now_job(cron, "token-1", OWNER)["metadata"]["name"] == first
    assert run_now_job(cron, "token-2", OWNER)["metadata"]["name"] != first


def test_a_run_now_job_shares_nothing_with_its_cron_job() -> None:
    cron = build_cron_job(seed_pipeline())
    job = run_now_job(cron, "token", OWNER)
    job["spec"]["template"]["metadata"]["labels"]["extra"] = "1"
    job["metadata"]["labels"]["extra"] = "1"
    assert "extra" not in cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert "extra" not in cron["spec"]["jobTemplate"]["metadata"]["labels"]


# ---------------------------------------------------------------------------------------------
# Runner settings
# ---------------------------------------------------------------------------------------------


def test_runner_settings_defaults() -> None:
    assert RunnerSettings.from_env({}) == RunnerSettings(
        image=f"sluice:{__version__}",
        pull_policy="IfNotPresent",
        resources={"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        service_account=None,
    )


def test_runner_settings_from_env_reach_the_pod() -> None:
    resources = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": 2147483648}}
    settings = RunnerSettings.from_env(
        {
            "SLUICE_RUNNER_IMAGE": "registry.example.com/sluice@sha256:" + "0" * 64,
            "SLUICE_RUNNER_PULL_POLICY": "Always",
            "SLUICE_RUNNER_RESOURCES": json.dumps(resources),
            "SLUICE_RUNNER_SERVICE_ACCOUNT": "sluice-runner",
        }
    )
    cron = build_cron_job(seed_pipeline(), settings=settings)
    export = container(cron)
    assert export["image"] == "registry.example.com/sluice@sha256:" + "0" * 64
    assert export["imagePullPolicy"] == "Always"
    assert export["resources"] == resources
    assert pod_spec(cron)["serviceAccountName"] == "sluice-runner"
    # The pod's copy is its own: changing it leaves the operator's settings alone.
    export["resources"]["limits"]["memory"] = "1"
    assert settings.resources == resources


def _with_function(spec: dict[str, Any]) -> None:
    spec["transformation"] = {
        "function": {
            "language": "Python",
            "source": "def transform(profile):\n    return {}\n",
            "inPaths": ["first_name", "last_name"],
            "outPaths": ["contact.firstname", "contact.lastname"],
        }
    }


def test_function_settings_reach_the_pods_of_function_pipelines_only() -> None:
    settings = RunnerSettings.from_env(
        {
            "SLUICE_FUNCTION_TIMEOUT": "2.5",
            "SLUICE_FUNCTION_MEMORY": "",  # the chart's null: Sluice's default
            "SLUICE_FUNCTION_SANDBOX": "off",
        }
    )
    assert settings.function_environment == {
        "SLUICE_FUNCTION_SANDBOX": "off",
        "SLUICE_FUNCTION_TIMEOUT": "2.5",
    }
    with_function = container(build_cron_job(seed_pipeline(_with_function), settings=settings))
    assert with_function["env"][-2:] == [
        {"name": "SLUICE_FUNCTION_SANDBOX", "value": "off"},
        {"name": "SLUICE_FUNCTION_TIMEOUT", "value": "2.5"},
    ]
    with_mapping = container(build_cron_job(seed_pipeline(), settings=settings))
    assert not any(v["name"].startswith("SLUICE_FUNCTION_") for v in with_mapping.get("env", []))


def test_empty_runner_variables_keep_the_defaults() -> None:
    empty = {
        "SLUICE_RUNNER_IMAGE": "",
        "SLUICE_RUNNER_PULL_POLICY": "",
        "SLUICE_RUNNER_RESOURCES": "",
        "SLUICE_RUNNER_SERVICE_ACCOUNT": "",
    }
    assert RunnerSettings.from_env(empty) == RunnerSettings()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "SLUICE_RUNNER_PULL_POLICY",
            "sometimes",
            "SLUICE_RUNNER_PULL_POLICY must be one of Always, IfNotPresent, Never, not 'sometimes'",
        ),
        ("SLUICE_RUNNER_RESOURCES", "{cpu: 1}", "SLUICE_RUNNER_RESOURCES must be a JSON object"),
        ("SLUICE_RUNNER_RESOURCES", "[]", "SLUICE_RUNNER_RESOURCES must be a JSON object"),
        (
            "SLUICE_RUNNER_RESOURCES",
            '{"request": {"cpu": "1"}}',
            "SLUICE_RUNNER_RESOURCES must be a JSON object",
        ),
        (
            "SLUICE_RUNNER_RESOURCES",
            '{"limits": {"memory": true}}',
            "quantities are strings or numbers",
        ),
        ("SLUICE_RUNNER_RESOURCES", '{"limits": "1Gi"}', "quantities are strings or numbers"),
    ],
)
def test_invalid_runner_variables(variable: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        RunnerSettings.from_env({variable: value})


def test_operator_objects_md_shows_the_objects_of_the_examples_seed_pipeline() -> None:
    text = (ROOT / "docs" / "operator-objects.md").read_text(encoding="utf-8")
    block = re.search(
        r"For the seed\s+pipeline \(schemas elided\):\s+```json\n(.*?)```", text, re.S
    )
    assert block is not None
    manifests = read_manifests([EXAMPLES])
    values = [
        outcome.value
        for outcome in validate_resources(manifests.resources, INSTALLED, secrets=manifests.secrets)
        if outcome.value is not None and outcome.value.namespace == "marketing"
    ]
    [seed] = [
        v for v in values if isinstance(v, Pipeline) and v.resource_name == "export-customers"
    ]
    [workspace] = [v for v in values if isinstance(v, Workspace)]
    [connection] = [v for v in values if isinstance(v, Connection) and v.id == seed.connection]
    config = export_config(seed, workspace, connection)
    for schema in (
        config["pipeline"]["inSchema"],
        config["pipeline"]["outSchema"],
        config["workspace"]["profileSchema"],
    ):
        schema["properties"] = ["…"]
    assert json.loads(block.group(1)) == config
    assert f"The seed pipeline's is `{child_name(seed.resource_name, seed.id)}`." in text
