"""The reconcile core: manifests (or cluster objects) into the store.

``sluice apply`` runs it on files; the operator and local mode will run it on what they watch.
Given resources are validated together with what the store already holds, so a pipeline file
applied alone finds its Workspace and Connection, and a changed Workspace re-validates the
pipelines that depend on it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sluice.manifests import Manifests
from sluice.model.errors import ApiError
from sluice.model.resources import Resource, validate_resources
from sluice.model.specs import API_GROUP
from sluice.store import Change, Store

Key = tuple[str, str, str]


@dataclass(frozen=True)
class Applied:
    """What applying did to one resource."""

    resource: Resource
    change: Change
    error: ApiError | None = None

    def line(self) -> str:
        """``exportpipeline.sluice.dev/marketing/export-customers created``, as kubectl says."""
        resource = self.resource
        subject = f"{resource.kind.lower()}.{API_GROUP}/{resource.namespace}/{resource.name}"
        if self.error is not None:
            return f"{subject} {self.change}: {self.error}"
        return f"{subject} {self.change}"


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
    for outcome in outcomes:
        change = store.save(outcome)
        key = _key(outcome.resource)
        if key in given or change is not Change.UNCHANGED:
            applied.append(Applied(outcome.resource, change, outcome.error))
    if prune:
        for key, held in sorted(stored.items()):
            if key not in given:
                store.delete(*key)
                applied.append(Applied(held.resource, Change.PRUNED))
    return applied


def _key(resource: Resource) -> Key:
    return resource.kind, resource.namespace, resource.name
