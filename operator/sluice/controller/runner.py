"""How runner pods are started (image, pull policy, resources, service account) and what they
are given: the contract between the operator and ``sluice export``.

The operator reads its settings from its own environment (set by the Helm chart); every runner
pod it creates uses them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sluice import __version__
from sluice.model.connection import Connection
from sluice.model.workspace import Workspace

#: Secrets' values by (namespace, name), then by key.
SecretValues = Mapping[tuple[str, str], Mapping[str, str]]

# What a runner pod finds, wherever it runs. The config and the credentials are sibling mounts:
# a volume mounted inside another volume's mount point depends on mount order.
CONFIG_DIR = "/etc/sluice/config"
CONFIG_FILE = "pipeline.json"
CONFIG_PATH = f"{CONFIG_DIR}/{CONFIG_FILE}"
#: One file per key of the Connection's credentials Secret.
CREDENTIALS_DIR = "/etc/sluice/credentials"
#: The warehouse DSN, from the Workspace's dsnSecretRef.
WAREHOUSE_DSN_ENV = "SLUICE_WAREHOUSE_DSN"
EXPORT_CONTAINER = "export"
EXPORT_COMMAND = ("sluice", "export", "--config", CONFIG_PATH)

PULL_POLICIES = ("Always", "IfNotPresent", "Never")
#: The operator's own variables with this prefix are passed on to function pipelines' pods.
FUNCTION_SETTINGS_PREFIX = "SLUICE_FUNCTION_"


def runner_secrets(
    workspace: Workspace, connection: Connection, secrets: SecretValues
) -> tuple[dict[str, str], dict[str, str]]:
    """What a runner is given from the Secrets' values: its environment (the warehouse DSN in
    :data:`WAREHOUSE_DSN_ENV`) and its credentials folder's files (the Connection's Secret, one
    per key). A value the Secrets do not hold is left out."""
    environment: dict[str, str] = {}
    reference = workspace.warehouse.dsn_secret
    if reference is not None:
        dsn = secrets.get((workspace.namespace, reference.name), {}).get(reference.key)
        if dsn is not None:
            environment[WAREHOUSE_DSN_ENV] = dsn
    credentials: dict[str, str] = {}
    if connection.credentials_secret is not None:
        credentials = dict(secrets.get((connection.namespace, connection.credentials_secret), {}))
    return environment, credentials


_RESOURCE_SECTIONS = frozenset({"requests", "limits"})


def _default_resources() -> dict[str, Any]:
    # No CPU limit: throttling a run only makes it slower; memory is what must stay bounded.
    return {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}


@dataclass(frozen=True)
class RunnerSettings:
    image: str = f"sluice:{__version__}"
    pull_policy: str = "IfNotPresent"
    #: A container's ``resources``: ``requests`` and ``limits``.
    resources: Mapping[str, Any] = field(default_factory=_default_resources)
    #: None leaves the namespace's ``default`` ServiceAccount (its token is never mounted).
    service_account: str | None = None
    #: ``SLUICE_FUNCTION_*`` settings (sluice/functions/pool.py) given to the export pods of
    #: pipelines with a transformation function.
    function_environment: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RunnerSettings:
        """Settings from ``SLUICE_RUNNER_*`` variables; an unset or empty one keeps its
        default (so a chart can always set them)."""
        defaults = cls()
        pull_policy = env.get("SLUICE_RUNNER_PULL_POLICY") or defaults.pull_policy
        if pull_policy not in PULL_POLICIES:
            raise ValueError(
                f"SLUICE_RUNNER_PULL_POLICY must be one of {', '.join(PULL_POLICIES)}, "
                f"not {pull_policy!r}"
            )
        resources = env.get("SLUICE_RUNNER_RESOURCES")
        return cls(
            image=env.get("SLUICE_RUNNER_IMAGE") or defaults.image,
            pull_policy=pull_policy,
            resources=_parse_resources(resources) if resources else defaults.resources,
            service_account=env.get("SLUICE_RUNNER_SERVICE_ACCOUNT") or None,
            function_environment={
                name: value
                for name, value in sorted(env.items())
                if name.startswith(FUNCTION_SETTINGS_PREFIX) and value
            },
        )


def _parse_resources(text: str) -> dict[str, Any]:
    problem = (
        'SLUICE_RUNNER_RESOURCES must be a JSON object like {"requests": {"cpu": "100m"}, '
        '"limits": {"memory": "1Gi"}}'
    )
    try:
        resources = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{problem}: {err}") from None
    if not isinstance(resources, dict) or not resources.keys() <= _RESOURCE_SECTIONS:
        raise ValueError(problem)
    for section in resources.values():
        if not isinstance(section, dict) or not all(
            isinstance(quantity, str | int | float) and not isinstance(quantity, bool)
            for quantity in section.values()
        ):
            raise ValueError(f"{problem}: quantities are strings or numbers")
    return resources
