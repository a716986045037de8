"""The reconcile core: manifests (or cluster objects) into the store.

``sluice apply`` runs it on files; the operator and local mode will run it on what they watch.
Given resources are validated together with what the store already holds, so a pipeline file
applied alone finds its Workspace and Connection, and a changed Workspace re-validates the
pipelines that depend on it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace

from sluice.manifests import Manifests
from sluice.model.errors import ApiError
from sluice.model.resources import Resource, validate_resources
from sluice.model.specs import API_GROUP
from sluice.model.workspace import Workspace
from sluice.store import Change, Store

Key = tuple[str, str, str]


@dataclass(frozen=True)
class Applied:
    """What applying did to one resource."""

    resource: Resource
    change: Change
    error: ApiError | None = None
    #: A Workspace's id, which admin clients of the read-only API name it by.
    workspace_id: int | None = None

    def line(self) -> str:
        """``exportpipeline.sluice.dev/marketing/export-customers created``, as kubectl says."""
        resource = self.resource
        subject = f"{resource.kind.lower()}.{API_GROUP}/{resource.namespace}/{resource.name}"
        if self.error is not None:
            return f"{subject} {self.change}: {self.error}"
        suffix = f" (id {self.workspace_id})" if self.workspace_id is not None else ""
        return f"{subject} {self.change}{suffix}"


def apply(
    store: Store, manifests: Manifests, connectors: Collection[str], prune: bool = False
) -> list[Applied]:
    """Save every given resource; with ``prune``, remove the stored ones not given.

    Stored resources that were not given but whose validity changed (a pipeline whose
    Workspace was just edited) are saved and reported too.
    """
    given = {_key(o.resource): o.resource for o in manifests.objects}
    stored = {_key(s.resource): s for s in store.resources()}
    resources = dict(given)
    if not prune:
        for key, held in stored.items():
            if key not in given and held.valid:
                resources.setdefault(key, held.resource)
    outcomes = validate_resources(
        resources.values(),
        connectors,
        secrets=manifests.secrets,
        existing_ids=store.pipeline_ids(),
    )
    applied: list[Applied] = []
    # One transaction: an apply lands whole or not at all, and commits once however many
    # objects it holds.
    with store.transaction() as connection:
        for outcome in outcomes:
            keys = (
                _api_keys(outcome.value, manifests)
                if isinstance(outcome.value, Workspace)
                else None
            )
            change = store.save(outcome, api_keys=keys, connection=connection)
            key = _key(outcome.resource)
            if key in given or change is not Change.UNCHANGED:
                applied.append(Applied(outcome.resource, change, outcome.error))
        if prune:
            for key, held in sorted(stored.items()):
                if key not in given:
                    store.delete(*key, connection=connection)
                    applied.append(Applied(held.resource, Change.PRUNED))
    workspace_ids = store.workspace_ids()
    return [
        replace(item, workspace_id=workspace_ids.get(item.resource.namespace))
        if item.resource.kind == "Workspace" and item.error is None
        else item
        for item in applied
    ]


def _api_keys(workspace: Workspace, manifests: Manifests) -> list[str] | None:
    """The workspace's API keys, one per line of its Secret key; None when that Secret is not
    among the manifests (then the stored keys stay)."""
    reference = workspace.api_keys_secret
    if reference is None:
        return []
    values = manifests.secrets.get((workspace.namespace, reference.name))
    if values is None or reference.key not in values:
        return None
    return [line.strip() for line in values[reference.key].splitlines() if line.strip()]


def _key(resource: Resource) -> Key:
    return resource.kind, resource.namespace, resource.name
