"""The Kubernetes objects the operator owns for a pipeline, as plain dicts ready to send.

Per pipeline: a ConfigMap holding the export config and a CronJob running ``sluice export`` on
the pipeline's schedule, both named :func:`child_name`; plus a Job per run-now request. Secret
values never appear here: the pod gets Secret references and the kubelet resolves them.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from typing import Any

from sluice.controller.runner import (
    CONFIG_DIR,
    CONFIG_FILE,
    CREDENTIALS_DIR,
    EXPORT_COMMAND,
    EXPORT_CONTAINER,
    WAREHOUSE_DSN_ENV,
    RunnerSettings,
)
from sluice.controller.schedule import cron_schedule, period_minutes
from sluice.model.connection import Connection
from sluice.model.pipeline import Pipeline, pipeline_to_api
from sluice.model.specs import GROUP_VERSION
from sluice.model.types import type_to_json
from sluice.model.workspace import Workspace

#: A Kubernetes object (or part of one) as JSON.
KubeObject = dict[str, Any]

CONFIG_VERSION = 1
CONFIG_HASH_ANNOTATION = "sluice.dev/config-hash"
PIPELINE_LABEL = "sluice.dev/pipeline"
PIPELINE_ID_LABEL = "sluice.dev/pipeline-id"
RUN_TOKEN_ANNOTATION = "sluice.dev/run-requested-at"
RUN_TOKEN_HASH_LABEL = "sluice.dev/run-requested-at-hash"
#: UID and GID of the runner: the "nonroot" user of distroless images.
RUNNER_USER = 65532

_LABEL_VALUE_LIMIT = 63
_RUN_JOB_INFIX = "-run-"
_RUN_TOKEN_HASH_LENGTH = 8
# Job names (and so their pods' job-name label) are at most 63 characters: leaving room for a
# run-now Job's suffix keeps child names within 50, under the CronJob limit of 52.
CHILD_NAME_LIMIT = _LABEL_VALUE_LIMIT - len(_RUN_JOB_INFIX) - _RUN_TOKEN_HASH_LENGTH
_CHILD_PREFIX = "sluice-"
_CHILD_HASH_LENGTH = 6
_UNSCHEDULED_PERIOD = "24h"
_SECONDS_PER_MINUTE = 60
_FINISHED_JOB_TTL_SECONDS = 86400
_HISTORY_LIMIT = 3
_NOT_LABEL_CHARACTERS = re.compile(r"[^a-z0-9-]")


# ---------------------------------------------------------------------------------------------
# The export config
# ---------------------------------------------------------------------------------------------


def export_config(pipeline: Pipeline, workspace: Workspace, connection: Connection) -> KubeObject:
    """What ``sluice export`` reads: the pipeline as the API shows it, where its profiles come
    from and where they go. Secrets appear as where to find them, never as values."""
    body = pipeline_to_api(pipeline)
    del body["running"]  # the state of a run, not a setting: it would change the hash
    warehouse = workspace.warehouse
    return {
        "version": CONFIG_VERSION,
        "pipeline": body,
        "namespace": pipeline.namespace,
        "resourceName": pipeline.resource_name,
        "workspace": {
            "warehouse": {
                "type": warehouse.type,
                "path": warehouse.path,
                "profilesTable": warehouse.profiles_table,
                "profileIdColumn": warehouse.profile_id_column,
                "dsnEnv": WAREHOUSE_DSN_ENV if warehouse.dsn_secret else None,
            },
            "profileSchema": type_to_json(workspace.profile_schema),
        },
        "connection": {
            "id": connection.id,
            "connector": connection.connector,
            "settings": copy.deepcopy(connection.settings),
            "credentialsDir": CREDENTIALS_DIR if connection.credentials_secret else None,
        },
    }


def config_text(config: KubeObject) -> str:
    return json.dumps(config, ensure_ascii=False, separators=(",", ":"))


def config_hash(config: KubeObject) -> str:
    return "sha256:" + hashlib.sha256(config_text(config).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Names, labels, owner
# ---------------------------------------------------------------------------------------------


def child_name(resource_name: str, pipeline_id: int) -> str:
    """The name of a pipeline's ConfigMap and CronJob: readable, a DNS-1123 label, at most
    :data:`CHILD_NAME_LIMIT` characters, and distinct for pipelines whose names only differ
    after the cut (the suffix hashes the id)."""
    suffix = hashlib.sha256(str(pipeline_id).encode()).hexdigest()[:_CHILD_HASH_LENGTH]
    room = CHILD_NAME_LIMIT - len(_CHILD_PREFIX) - len(suffix) - 1
    name = _NOT_LABEL_CHARACTERS.sub("-", resource_name)[:room].rstrip("-")
    return f"{_CHILD_PREFIX}{name}-{suffix}"


def owner_reference(name: str, uid: str) -> KubeObject:
    """The ExportPipeline as the controlling owner: deleting it deletes its children."""
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "ExportPipeline",
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def labels(pipeline: Pipeline) -> dict[str, str]:
    """Labels of every object made for the pipeline; select by the id label to be exact (the
    name label is cut to the 63 characters a label value can hold)."""
    return {
        "app.kubernetes.io/name": "sluice",
        "app.kubernetes.io/managed-by": "sluice",
        "app.kubernetes.io/component": "export",
        PIPELINE_LABEL: pipeline.resource_name[:_LABEL_VALUE_LIMIT].rstrip("-."),
        PIPELINE_ID_LABEL: str(pipeline.id),
    }


def _metadata(
    name: str, namespace: str, object_labels: dict[str, str], owner: KubeObject
) -> KubeObject:
    return {
        "name": name,
        "namespace": namespace,
        "labels": object_labels,
        "ownerReferences": [dict(owner)],
    }


# ---------------------------------------------------------------------------------------------
# ConfigMap and CronJob
# ---------------------------------------------------------------------------------------------


def config_map(pipeline: Pipeline, config: KubeObject, owner: KubeObject) -> KubeObject:
    metadata = _metadata(
        child_name(pipeline.resource_name, pipeline.id), pipeline.namespace, labels(pipeline), owner
    )
    metadata["annotations"] = {CONFIG_HASH_ANNOTATION: config_hash(config)}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "data": {CONFIG_FILE: config_text(config)},
    }


def cron_job(
    pipeline: Pipeline,
    workspace: Workspace,
    connection: Connection,
    *,
    config_hash: str,
    settings: RunnerSettings,
    owner: KubeObject,
) -> KubeObject:
    """The CronJob running the pipeline on its schedule, suspended while the pipeline is
    disabled. An unscheduled pipeline has one too, suspended: run-now Jobs come from its
    template."""
    name = child_name(pipeline.resource_name, pipeline.id)
    period = pipeline.schedule_period or _UNSCHEDULED_PERIOD
    period_seconds = period_minutes(period) * _SECONDS_PER_MINUTE
    annotations = {CONFIG_HASH_ANNOTATION: config_hash}
    pod = _pod_spec(workspace, connection, name, settings)
    if pipeline.function is not None and settings.function_environment:
        (container,) = pod["containers"]
        container["env"] = container.get("env", []) + [
            {"name": name, "value": value} for name, value in settings.function_environment.items()
        ]
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _metadata(name, pipeline.namespace, labels(pipeline), owner),
        "spec": {
            "schedule": cron_schedule(period, pipeline.schedule_start),
            "timeZone": "Etc/UTC",
            "suspend": not pipeline.enabled or pipeline.schedule_period is None,
            "concurrencyPolicy": "Forbid",
            # A run that cannot start within half a period (an hour at most) is skipped rather
            # than run late. Never under 150 s, well above the 10 s between the controller's
            # checks, below which every run could be missed.
            "startingDeadlineSeconds": min(period_seconds // 2, 3600),
            "successfulJobsHistoryLimit": _HISTORY_LIMIT,
            "failedJobsHistoryLimit": _HISTORY_LIMIT,
            "jobTemplate": {
                "metadata": {"labels": labels(pipeline), "annotations": dict(annotations)},
                "spec": _job_spec(pipeline, period_seconds, annotations, pod),
            },
        },
    }


def _job_spec(
    pipeline: Pipeline, period_seconds: int, annotations: dict[str, str], pod: KubeObject
) -> KubeObject:
    return {
        # The engine retries rows itself; another pod would redo the whole run.
        "backoffLimit": 1,
        # A run must end before the next one is due.
        "activeDeadlineSeconds": period_seconds,
        "ttlSecondsAfterFinished": _FINISHED_JOB_TTL_SECONDS,
        # A pod evicted by a node drain or preemption is retried without using up the backoff.
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
                "labels": labels(pipeline),
                # Which config a run used; a new config changes the template, hence the CronJob.
                "annotations": dict(annotations),
            },
            "spec": pod,
        },
    }


def _pod_spec(
    workspace: Workspace, connection: Connection, config_map_name: str, settings: RunnerSettings
) -> KubeObject:
    mounts: list[KubeObject] = [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}]
    volumes: list[KubeObject] = [
        {
            "name": "config",
            "configMap": {
                "name": config_map_name,
                "items": [{"key": CONFIG_FILE, "path": CONFIG_FILE}],
            },
        }
    ]
    if connection.credentials_secret is not None:
        mounts.append({"name": "credentials", "mountPath": CREDENTIALS_DIR, "readOnly": True})
        volumes.append(
            {
                "name": "credentials",
                # Readable by the runner's group (fsGroup) only.
                "secret": {"secretName": connection.credentials_secret, "defaultMode": 0o440},
            }
        )
    # The only writable place: the root filesystem is read-only.
    mounts.append({"name": "tmp", "mountPath": "/tmp"})
    volumes.append({"name": "tmp", "emptyDir": {}})
    container: KubeObject = {
        "name": EXPORT_CONTAINER,
        "image": settings.image,
        "imagePullPolicy": settings.pull_policy,
        "command": list(EXPORT_COMMAND),
        "resources": copy.deepcopy(dict(settings.resources)),
        # The run summary; a pod that dies before writing one reports its last log lines.
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }
    dsn = workspace.warehouse.dsn_secret
    if dsn is not None:
        container["env"] = [
            {
                "name": WAREHOUSE_DSN_ENV,
                "valueFrom": {"secretKeyRef": {"name": dsn.name, "key": dsn.key}},
            }
        ]
    pod: KubeObject = {
        "restartPolicy": "Never",
        # Runners never talk to the Kubernetes API.
        "automountServiceAccountToken": False,
        # The restricted Pod Security Standard.
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUNNER_USER,
            "runAsGroup": RUNNER_USER,
            "fsGroup": RUNNER_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
    }
    if settings.service_account is not None:
        pod["serviceAccountName"] = settings.service_account
    return pod


# ---------------------------------------------------------------------------------------------
# Run now
# ---------------------------------------------------------------------------------------------


def run_now_job(cron_job: KubeObject, token: str, owner: KubeObject) -> KubeObject:
    """A Job made from the CronJob's template, as ``kubectl create job --from=cronjob/...``
    does, for one run-now request: the same token always gives the same Job name, so a
    request handled twice creates one Job."""
    token_hash = hashlib.sha256(token.encode()).hexdigest()[:_RUN_TOKEN_HASH_LENGTH]
    template = copy.deepcopy(cron_job["spec"]["jobTemplate"])
    cron_metadata = cron_job["metadata"]
    metadata = _metadata(
        f"{cron_metadata['name']}{_RUN_JOB_INFIX}{token_hash}",
        cron_metadata["namespace"],
        {**template["metadata"]["labels"], RUN_TOKEN_HASH_LABEL: token_hash},
        owner,
    )
    metadata["annotations"] = {**template["metadata"]["annotations"], RUN_TOKEN_ANNOTATION: token}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": template["spec"]}
