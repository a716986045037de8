"""The reconcile core: manifests (or cluster objects) into the store.

``sluice apply`` runs it on files; the operator and local mode will run it on what they watch.
Given resources are validated together with what the store already holds, so a pipeline file
applied alone finds its Workspace and Connection, and a changed Workspace re-validates the
pipelines that depend on it.

Every resource belongs to the *apply set* (the source: a set of manifest paths, or the cluster)
that last applied it, as with kubectl's ApplySet: pruning removes only what its own source
applied and no longer holds, never what another source applied.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

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

#: The operator's apply set: the objects of the cluster.
CLUSTER_APPLY_SET = "cluster"


def apply_set_of(paths: Iterable[str | Path]) -> str:
    """The apply set of the manifests under ``paths``: the same paths, however written
    (relative, in another order), are the same source. A digest, so any number of paths fits
    a column."""
    resolved = sorted({str(Path(path).resolve()) for path in paths})
    return hashlib.sha256("\n".join(resolved).encode("utf-8")).hexdigest()


class NothingToPruneError(Exception):
    """Pruning by manifests that hold no Sluice object: an empty folder or a truncated file
    looks exactly like that, so it prunes nothing rather than everything."""

    def __init__(self) -> None:
        super().__init__("no Sluice object in the input: nothing pruned")


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
    apply_set: str,
    secrets: SecretKeys,
    api_keys: ApiKeys,
    prune: bool = False,
) -> tuple[list[Reconciled], list[Resource]]:
    """Save the given resources, validated with what the store holds, in one transaction; they
    then belong to ``apply_set``.

    Returns the outcome of every given resource and of every stored one whose validity or body
    changed (a pipeline whose Workspace was just edited), and, with ``prune``, the stored
    resources of ``apply_set`` that were not given and were removed.
    """
    given_by_key = {_key(resource): resource for resource in given}
    stored = {_key(s.resource): s for s in store.resources()}
    gone = {
        key: held
        for key, held in stored.items()
        if prune and key not in given_by_key and held.apply_set == apply_set
    }
    resources = dict(given_by_key)
    for key, held in stored.items():
        if key not in given_by_key and key not in gone and held.valid:
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
            was_given = _key(outcome.resource) in given_by_key
            change = store.save(
                outcome,
                api_keys=keys,
                apply_set=apply_set if was_given else None,
                connection=connection,
            )
            if was_given or change is not Change.UNCHANGED:
                reconciled.append(Reconciled(outcome, change))
        for key, held in sorted(gone.items()):
            store.delete(*key, connection=connection)
            pruned.append(held.resource)
    return reconciled, pruned


def apply(
    store: Store,
    manifests: Manifests,
    capabilities: Capabilities,
    apply_set: str,
    prune: bool = False,
) -> list[Applied]:
    """Save every resource of the manifests, which then belong to ``apply_set``; with
    ``prune``, remove the stored ones of ``apply_set`` not given.

    Raises :class:`NothingToPruneError` when pruning by manifests without a Sluice object.
    """
    if prune and not manifests.objects:
        raise NothingToPruneError
    reconciled, pruned = reconcile(
        store,
        manifests.resources,
        capabilities,
        apply_set=apply_set,
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
