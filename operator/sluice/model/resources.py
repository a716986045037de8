"""Validate a set of Sluice resources together, resolving the references between them.

Resources are grouped by namespace: a namespace has at most one Workspace, Connections with
unique ids, and ExportPipelines that refer to both. Pipeline ids are assigned over the whole set
(ids are global, like the API's), in a stable order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from sluice.model.capabilities import Capabilities
from sluice.model.connection import Connection, validate_connection
from sluice.model.errors import ApiError, bad_request
from sluice.model.ids import assign_pipeline_ids
from sluice.model.pipeline import ConnectionEntry, Pipeline, PipelineContext, validate_pipeline
from sluice.model.workspace import Workspace, validate_workspace

KINDS = ("Workspace", "Connection", "ExportPipeline")


@dataclass(frozen=True)
class Resource:
    kind: str
    namespace: str
    name: str
    spec: object


@dataclass(frozen=True)
class Outcome:
    resource: Resource
    value: Workspace | Connection | Pipeline | None = None
    error: ApiError | None = None
    #: ExportPipelines have an id even when invalid, so errors can be reported against it.
    pipeline_id: int | None = None


#: Secrets known by (namespace, name), with their keys; references to others are not checked.
SecretKeys = Mapping[tuple[str, str], Collection[str]]


def validate_resources(
    resources: Iterable[Resource],
    capabilities: Capabilities,
    secrets: SecretKeys | None = None,
    existing_ids: Mapping[tuple[str, str], int] | None = None,
) -> list[Outcome]:
    """One outcome per resource, in the order given.

    ``existing_ids`` are the ids pipelines already have (in a store): they keep them.
    """
    resources = list(resources)
    by_namespace: dict[str, list[Resource]] = defaultdict(list)
    for resource in resources:
        by_namespace[resource.namespace].append(resource)
    ids = assign_pipeline_ids(
        ((r.namespace, r.name) for r in resources if r.kind == "ExportPipeline"), existing_ids
    )
    outcomes: dict[int, Outcome] = {}
    for namespace, members in by_namespace.items():
        validator = _NamespaceValidator(namespace, capabilities, secrets or {})
        for resource, outcome in validator.run(members, ids):
            outcomes[id(resource)] = outcome
    return [outcomes[id(r)] for r in resources]


class _NamespaceValidator:
    def __init__(self, namespace: str, capabilities: Capabilities, secrets: SecretKeys) -> None:
        self.namespace = namespace
        self.capabilities = capabilities
        self.secrets = secrets

    def run(
        self, members: list[Resource], ids: Mapping[tuple[str, str], int]
    ) -> Iterable[tuple[Resource, Outcome]]:
        of_kind = {kind: [r for r in members if r.kind == kind] for kind in KINDS}
        workspaces = [self._workspace(r, of_kind["Workspace"]) for r in of_kind["Workspace"]]
        yield from ((o.resource, o) for o in workspaces)
        connections = self._connections(of_kind["Connection"])
        yield from ((o.resource, o) for o in connections)
        context = self._context(workspaces, connections)
        for resource in of_kind["ExportPipeline"]:
            pipeline_id = ids[resource.namespace, resource.name]
            try:
                pipeline = validate_pipeline(
                    resource.namespace, resource.name, resource.spec, pipeline_id, context
                )
            except ApiError as err:
                yield resource, Outcome(resource, error=err, pipeline_id=pipeline_id)
            else:
                yield resource, Outcome(resource, pipeline, pipeline_id=pipeline_id)

    def _workspace(self, resource: Resource, all_workspaces: list[Resource]) -> Outcome:
        if len(all_workspaces) > 1:
            names = ", ".join(sorted(w.name for w in all_workspaces))
            return Outcome(
                resource,
                error=bad_request(
                    f"a namespace has one Workspace, but {self.namespace} has {names}"
                ),
            )
        try:
            workspace = validate_workspace(resource.namespace, resource.name, resource.spec)
            kind = workspace.warehouse.type
            if kind not in self.capabilities.warehouses:
                raise bad_request(
                    f"this installation cannot read {kind} warehouses (the duckdb package is "
                    "not installed: Sluice's container image reads PostgreSQL; for DuckDB, "
                    "install sluice[duckdb])",
                    ("spec", "warehouse", "type"),
                )
            dsn = workspace.warehouse.dsn_secret
            if dsn is not None:
                self._check_secret_key(dsn.name, dsn.key, ("spec", "warehouse", "dsnSecretRef"))
            keys = workspace.api_keys_secret
            if keys is not None:
                self._check_secret_key(keys.name, keys.key, ("spec", "apiKeysSecretRef"))
        except ApiError as err:
            return Outcome(resource, error=err)
        return Outcome(resource, workspace)

    def _connections(self, resources: list[Resource]) -> list[Outcome]:
        outcomes = []
        for resource in resources:
            try:
                connection = validate_connection(
                    resource.namespace, resource.name, resource.spec, self.capabilities.connectors
                )
            except ApiError as err:
                outcomes.append(Outcome(resource, error=err))
            else:
                outcomes.append(Outcome(resource, connection))
        return [self._refuse_shared_id(o, outcomes) for o in outcomes]

    @staticmethod
    def _refuse_shared_id(outcome: Outcome, outcomes: list[Outcome]) -> Outcome:
        # Pipelines refer to connections by id: an id declared twice would be ambiguous, so
        # every holder of it is refused until one of them changes.
        if not isinstance(outcome.value, Connection):
            return outcome
        others = sorted(
            o.resource.name
            for o in outcomes
            if o is not outcome
            and isinstance(o.value, Connection)
            and o.value.id == outcome.value.id
        )
        if not others:
            return outcome
        error = bad_request(
            f'connection id {outcome.value.id} is also declared by Connection "{others[0]}"',
            ("spec", "id"),
        )
        return Outcome(outcome.resource, error=error)

    def _context(self, workspaces: list[Outcome], connections: list[Outcome]) -> PipelineContext:
        valid = [o.value for o in workspaces if isinstance(o.value, Workspace)]
        errors = [o.error for o in workspaces if o.error is not None]
        entries = [
            ConnectionEntry(
                resource_name=o.resource.name,
                id=_declared_id(o.resource.spec),
                connection=o.value if isinstance(o.value, Connection) else None,
                error=o.error,
            )
            for o in connections
        ]
        return PipelineContext(
            workspace=valid[0] if valid else None,
            workspace_error=errors[0] if errors else None,
            connections=entries,
            languages=self.capabilities.languages,
            check_source=self.capabilities.check_source,
        )

    def _check_secret_key(self, name: str, key: str, location: tuple[str, ...]) -> None:
        keys = self.secrets.get((self.namespace, name))
        if keys is not None and key not in keys:
            raise bad_request(f'Secret "{name}" has no key "{key}"', location)


def _declared_id(spec: object) -> int | None:
    """The id an (even invalid) Connection declares, so pipelines can still find it."""
    if isinstance(spec, dict):
        declared = spec.get("id")
        if isinstance(declared, int) and not isinstance(declared, bool):
            return declared
    return None
