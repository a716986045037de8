"""The reconcile core: manifests (or cluster objects) into the store.

``sluice apply`` runs it on files; the operator and local mode will run it on what they watch.
Given resources are validated together with what the store already holds, so a pipeline file
applied alone finds its Workspace and Connection, and a changed Workspace re-validates the
pipelines that depend on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from sluice.manifests import Manifests
from sluice.model.capabilities import Capabilities
from sluice.model.connection import Connection
from sluice.model.errors import ApiError
from sluice.model.pipeline import Pipeline
from sluice.model.resources import Outcome, Resource, SecretKeys, validate_resources
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
    #: The validated Workspace, Connection or ExportPipeline; None when invalid or pruned.
    value: Workspace | Connection | Pipeline | None = None

    def line(self) -> str:
        """``exportpipeline.sluice.dev/marketing/export-customers created``, as kubectl says."""
        resource = self.resource
        subject = f"{resource.kind.lower()}.{API_GROUP}/{resource.namespace}/{resource.name}"
        if self.error is not None:
            return f"{subject} {self.change}: {self.error}"
        suffix = f" (id {self.workspace_id})" if self.workspace_id is not None else ""
        return f"{subject} {self.change}{suffix}"


@dataclass(frozen=True)
class Reconciled:
    """One resource's validation outcome and what saving it did."""

    outcome: Outcome
    change: Change


#: A valid Workspace's keys to the read-only API; None when unknown (the stored ones stay).
ApiKeys = Callable[[Workspace], list[str] | None]


def reconcile(
    store: Store,
    given: Iterable[Resource],
    capabilities: Capabilities,
    *,
    secrets: SecretKeys,
    api_keys: ApiKeys,
    prune: bool = False,
) -> tuple[list[Reconciled], list[Resource]]:
    """Save the given resources, validated with what the store holds, in one transaction.

    Returns the outcome of every given resource and of every stored one whose validity or body
    changed (a pipeline whose Workspace was just edited), and, with ``prune``, the stored
    resources that were not given and were removed.
    """
    given_by_key = {_key(resource): resource for resource in given}
    stored = {_key(s.resource): s for s in store.resources()}
    resources = dict(given_by_key)
    if not prune:
        for key, held in stored.items():
            if key not in given_by_key and held.valid:
                resources.setdefault(key, held.resource)
    outcomes = validate_resources(
        resources.values(), capabilities, secrets=secrets, existing_ids=store.pipeline_ids()
    )
    reconciled: list[Reconciled] = []
    pruned: list[Resource] = []
    # One transaction: a reconcile lands whole or not at all, and commits once however many
    # objects it holds.
    with store.transaction() as connection:
        for outcome in outcomes:
            keys = api_keys(outcome.value) if isinstance(outcome.value, Workspace) else None
            change = store.save(outcome, api_keys=keys, connection=connection)
            if _key(outcome.resource) in given_by_key or change is not Change.UNCHANGED:
                reconciled.append(Reconciled(outcome, change))
        if prune:
            for key, held in sorted(stored.items()):
                if key not in given_by_key:
                    store.delete(*key, connection=connection)
                    pruned.append(held.resource)
    return reconciled, pruned


def apply(
    store: Store, manifests: Manifests, capabilities: Capabilities, prune: bool = False
) -> list[Applied]:
    """Save every resource of the manifests; with ``prune``, remove the stored ones not given."""
    reconciled, pruned = reconcile(
        store,
        manifests.resources,
        capabilities,
        secrets=manifests.secrets,
        api_keys=lambda workspace: _api_keys(workspace, manifests.secrets),
        prune=prune,
    )
    workspace_ids = store.workspace_ids()
    applied = [
        Applied(
            item.outcome.resource,
            item.change,
            item.outcome.error,
            workspace_ids.get(item.outcome.resource.namespace)
            if isinstance(item.outcome.value, Workspace)
            else None,
            item.outcome.value,
        )
        for item in reconciled
    ]
    return applied + [Applied(resource, Change.PRUNED) for resource in pruned]


def _api_keys(
    workspace: Workspace, secrets: Mapping[tuple[str, str], Mapping[str, str]]
) -> list[str] | None:
    """The workspace's API keys, one per line of its Secret key; None when that Secret is not
    known (then the stored keys stay)."""
    reference = workspace.api_keys_secret
    if reference is None:
        return []
    values = secrets.get((workspace.namespace, reference.name))
    if values is None or reference.key not in values:
        return None
    return api_keys_in(values[reference.key])


def api_keys_in(text: str) -> list[str]:
    """The keys of an API keys Secret value: one per line."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def _key(resource: Resource) -> Key:
    return resource.kind, resource.namespace, resource.name
