"""The operator: the cluster's Workspaces, Connections and ExportPipelines, reconciled into the
store, into one ConfigMap and CronJob per pipeline, and into their statuses.

kopf watches; its handlers only record what they saw and wake the reconciler. The reconciler
validates the whole cluster view in one pass with the same core as ``sluice apply`` (so a
changed Workspace re-validates its pipelines), applies children whose configuration changed,
runs the verbs asked for in annotations, and writes statuses that changed. Passes are
coalesced: a burst of events (a thousand pipelines applied at once) costs a few passes.

No finalizer is ever added (only event handlers are registered, which kopf does not guard with
one): a pipeline deleted while the operator is down is deleted at once, its children are
garbage-collected through their owner references, and the first pass after a restart removes
it from the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sluice.controller import builders, schedule, status
from sluice.controller.kube import Kube
from sluice.controller.runner import RunnerSettings
from sluice.controller.summary import job_run, timestamp_text
from sluice.installation import INSTALLED
from sluice.model.capabilities import Capabilities
from sluice.model.connection import Connection
from sluice.model.pipeline import Pipeline
from sluice.model.resources import KINDS, Outcome, Resource
from sluice.model.workspace import Workspace
from sluice.reconcile import CLUSTER_APPLY_SET, Reconciled, api_keys_in, reconcile
from sluice.store import FinishedRun, Store

log = logging.getLogger("sluice.operator")

Key = tuple[str, str, str]  # kind, namespace, name

RECONCILE_ANNOTATION = "reconcile.fluxcd.io/requestedAt"
#: A full pass also runs this often without events: Secrets holding API keys are not watched,
#: and the next-run time in statuses moves on.
RESYNC_SECONDS = 60.0
#: Objects reconciled at once in a pass: requests to the API server overlap, in bounds.
CONCURRENCY = 16
#: After a failed pass, wait this long before the next (the failure is logged).
RETRY_SECONDS = 5.0

RUN_EVENTS = {
    "Succeeded": ("Normal", "RunSucceeded"),
    "PartiallyFailed": ("Warning", "RunPartiallyFailed"),
    "Failed": ("Warning", "RunFailed"),
}


@dataclass
class _Namespace:
    """What a pass found valid in one namespace, for building the pipelines' children."""

    workspace: Workspace | None = None
    connections: dict[int, Connection] = field(default_factory=dict)


class Operator:
    def __init__(
        self,
        store: Store,
        kube: Kube,
        runner: RunnerSettings,
        capabilities: Capabilities = INSTALLED,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.kube = kube
        self.runner = runner
        self.capabilities = capabilities
        self.clock = clock
        #: The cluster as last seen, by kind, namespace and name.
        self.objects: dict[Key, dict[str, Any]] = {}
        #: The configuration hash last applied to each pipeline's children, by pipeline uid.
        self._applied: dict[str, str] = {}
        self._wake = asyncio.Event()
        self.ready = asyncio.Event()
        #: Set while this replica may write (always, without leader election).
        self.leading = asyncio.Event()
        self.leading.set()
        #: Jobs seen while another replica led, recorded once this one leads.
        self._unrecorded_jobs: dict[tuple[str, str], dict[str, Any]] = {}

    # -----------------------------------------------------------------------------------------
    # What kopf reports
    # -----------------------------------------------------------------------------------------

    def observe(self, kind: str, event_type: str | None, body: Mapping[str, Any]) -> None:
        """An object of ours was listed, added, changed or deleted."""
        metadata = body["metadata"]
        key = (kind, metadata["namespace"], metadata["name"])
        if event_type == "DELETED":
            self.objects.pop(key, None)
        else:
            self.objects[key] = _plain(body)
        self._wake.set()

    async def observe_job(self, body: Mapping[str, Any]) -> None:
        """A Job of a pipeline was seen: record its run, announce its end once."""
        job = _plain(body)
        metadata = job["metadata"]
        if not self.leading.is_set():
            self._unrecorded_jobs[metadata["namespace"], metadata["name"]] = job
            return
        try:
            pipeline_id = int(metadata.get("labels", {})[builders.PIPELINE_ID_LABEL])
        except (KeyError, ValueError):
            return
        namespace, job_name = metadata["namespace"], metadata["name"]
        finished: FinishedRun | None = None
        started = _started(job, self.clock())
        if job_run(job, None) is not None:  # finished: its pod may hold the run's summary
            run = job_run(job, await self.kube.job_pod(namespace, job_name))
            assert run is not None
            outcome = run.summary
            started = outcome.started_at
            finished = FinishedRun.of(outcome)
        if await asyncio.to_thread(self.store.pipeline, pipeline_id) is None:
            return  # not a stored pipeline (any more): nothing to attach the run to
        _, newly_finished = await asyncio.to_thread(
            self.store.record_job_run, pipeline_id, job_name, started, finished
        )
        owner = self._pipeline_of(namespace, pipeline_id)
        if newly_finished and finished is not None and owner is not None:
            kind, reason = RUN_EVENTS.get(finished.outcome, ("Warning", "RunFailed"))
            error = f": {finished.error}" if finished.error else ""
            await self._event(owner, kind, reason, f"run {job_name}: {finished.outcome}{error}")
        self._wake.set()

    # -----------------------------------------------------------------------------------------
    # Reconciling
    # -----------------------------------------------------------------------------------------

    async def seed(self) -> None:
        """Read every object of ours before the first pass, so it prunes only what is gone."""
        for kind in KINDS:
            for obj in await self.kube.list_objects(kind):
                metadata = obj["metadata"]
                self.objects.setdefault((kind, metadata["namespace"], metadata["name"]), obj)

    async def run(self, stop: asyncio.Event) -> None:
        """Reconcile whenever woken (or every RESYNC_SECONDS) until ``stop`` is set."""
        seeded = False
        self._wake.set()
        while True:
            await _until_set(RESYNC_SECONDS, self._wake, stop)
            if stop.is_set():
                return
            self._wake.clear()
            if not self.leading.is_set():
                await _until_set(RESYNC_SECONDS, self.leading, stop)
                self._wake.set()  # a new leader reconciles at once
                continue
            try:
                for job in list(self._unrecorded_jobs.values()):
                    await self.observe_job(job)
                self._unrecorded_jobs.clear()
                if not seeded:
                    await self.seed()
                    seeded = True
                await self.reconcile_all()
                self.ready.set()
            except Exception:
                log.exception("reconcile pass failed; retrying in %.0fs", RETRY_SECONDS)
                await _until_set(RETRY_SECONDS, stop)
                self._wake.set()

    async def reconcile_all(self) -> None:
        """One pass over the whole cluster view."""
        objects = dict(self.objects)
        resources = [
            Resource(kind, ns, name, obj.get("spec")) for (kind, ns, name), obj in objects.items()
        ]
        keys = await self._api_keys(objects)
        reconciled, pruned = await asyncio.to_thread(
            reconcile,
            self.store,
            resources,
            self.capabilities,
            apply_set=CLUSTER_APPLY_SET,
            secrets={(ns, name): {key} for (ns, name, key) in keys},
            api_keys=lambda workspace: _workspace_keys(workspace, keys),
            prune=True,
        )
        for resource in pruned:
            log.info(
                "removed %s %s/%s from the store", resource.kind, resource.namespace, resource.name
            )
        namespaces = _valid_by_namespace(reconciled)
        workspace_ids = await asyncio.to_thread(self.store.workspace_ids)
        last_runs = await asyncio.to_thread(self.store.latest_runs)
        gate = asyncio.Semaphore(CONCURRENCY)

        async def reconcile_one(item: Reconciled) -> None:
            resource = item.outcome.resource
            obj = objects.get((resource.kind, resource.namespace, resource.name))
            if obj is None:
                return
            async with gate:
                if resource.kind == "ExportPipeline":
                    await self._reconcile_pipeline(
                        obj, item.outcome, namespaces[resource.namespace], last_runs
                    )
                else:
                    extra = {}
                    if resource.kind == "Workspace" and item.outcome.error is None:
                        extra["id"] = workspace_ids.get(resource.namespace)
                    await self._write_status(obj, self._accepted_conditions(item.outcome), extra)

        await asyncio.gather(*(reconcile_one(item) for item in reconciled))

    async def _reconcile_pipeline(
        self,
        obj: dict[str, Any],
        outcome: Outcome,
        namespace: _Namespace,
        last_runs: Mapping[int, dict[str, Any]],
    ) -> None:
        metadata = obj["metadata"]
        current = obj.get("status") or {}
        annotations = metadata.get("annotations") or {}
        pipeline_id = outcome.pipeline_id
        assert pipeline_id is not None
        extra: dict[str, Any] = {"id": pipeline_id}
        reconcile_token = annotations.get(RECONCILE_ANNOTATION)
        forced = reconcile_token is not None and reconcile_token != current.get(
            "lastHandledReconcileAt"
        )
        last_run = last_runs.get(pipeline_id)
        running = bool(last_run and last_run["endTime"] is None)
        pipeline = outcome.value
        if isinstance(pipeline, Pipeline):
            workspace = namespace.workspace
            connection = namespace.connections.get(pipeline.connection)
            assert workspace is not None and connection is not None  # the pipeline is valid
            cron_job = await self._apply_children(obj, pipeline, workspace, connection, forced)
            extra |= await self._run_now(obj, cron_job, annotations, current, running)
            now = self.clock()
            next_run = (
                schedule.next_run(pipeline.schedule_period, pipeline.schedule_start, now)
                if pipeline.enabled
                else None
            )
            extra["cronJobName"] = cron_job["metadata"]["name"]
            extra["schedule"] = {
                "cron": cron_job["spec"]["schedule"],
                "timeZone": cron_job["spec"]["timeZone"],
                "suspended": cron_job["spec"]["suspend"],
                "nextRunAt": timestamp_text(next_run) if next_run is not None else None,
            }
            conditions = status.in_force(
                enabled=pipeline.enabled,
                next_run=next_run,
                last_outcome=last_run.get("outcome") if last_run else None,
                last_error=last_run.get("error") if last_run else None,
            )
        else:
            assert outcome.error is not None
            kept = await asyncio.to_thread(self.store.pipeline, pipeline_id) is not None
            conditions = status.refused(outcome.error, kept)
        if forced:
            extra["lastHandledReconcileAt"] = reconcile_token
        extra["running"] = running
        extra["lastRun"] = _last_run_status(last_run) if last_run else None
        await self._write_status(obj, conditions, extra)

    async def _apply_children(
        self,
        obj: Mapping[str, Any],
        pipeline: Pipeline,
        workspace: Workspace,
        connection: Connection,
        forced: bool,
    ) -> dict[str, Any]:
        """The pipeline's CronJob, applied with its ConfigMap when their configuration changed
        since the last apply (or a reconcile was asked for)."""
        metadata = obj["metadata"]
        owner = builders.owner_reference(metadata["name"], metadata["uid"])
        config = builders.export_config(pipeline, workspace, connection)
        digest = builders.config_hash(config)
        cron_job = builders.cron_job(
            pipeline, workspace, connection, config_hash=digest, settings=self.runner, owner=owner
        )
        # The CronJob carries everything the hash does not: suspend, schedule, runner settings.
        applied = builders.config_hash({"config": digest, "cronJob": cron_job})
        if forced or self._applied.get(metadata["uid"]) != applied:
            await self.kube.apply(builders.config_map(pipeline, config, owner))
            await self.kube.apply(cron_job)
            self._applied[metadata["uid"]] = applied
        return cron_job

    async def _run_now(
        self,
        obj: Mapping[str, Any],
        cron_job: Mapping[str, Any],
        annotations: Mapping[str, str],
        current: Mapping[str, Any],
        running: bool,
    ) -> dict[str, Any]:
        """A Job from the CronJob's template for each new run-now token, unless a run is in
        progress (the CronJob's Forbid policy does not cover Jobs made from it)."""
        token = annotations.get(builders.RUN_TOKEN_ANNOTATION)
        if token is None or token == current.get("lastHandledRunAt"):
            return {}
        if running:
            await self._event(obj, "Normal", "RunSkipped", "a run is in progress")
            return {"lastHandledRunAt": token}
        metadata = obj["metadata"]
        owner = builders.owner_reference(metadata["name"], metadata["uid"])
        job = builders.run_now_job(dict(cron_job), token, owner)
        if await self.kube.create_job(job):
            await self._event(
                obj, "Normal", "RunRequested", f"created Job {job['metadata']['name']}"
            )
        return {"lastHandledRunAt": token}

    def _accepted_conditions(self, outcome: Outcome) -> list[status.Condition]:
        if outcome.error is not None:
            return status.refused(outcome.error, in_force=False)
        return [status.Condition("Ready", "True", "Accepted", "validated and stored")]

    async def _write_status(
        self,
        obj: dict[str, Any],
        conditions: list[status.Condition],
        extra: Mapping[str, Any],
    ) -> None:
        """Patch the status when it differs from what the object shows; an Event per
        transition of Ready or Stalled."""
        metadata = obj["metadata"]
        current = obj.get("status") or {}
        previous = current.get("conditions") or []
        generation = metadata.get("generation", 1)
        kind = obj.get("kind", "ExportPipeline")
        where = (kind, metadata["namespace"], metadata["name"])
        if not previous:
            # kstatus must never see a Ready that was never anything but True.
            previous = status.merged_conditions([], status.first_sight(), generation, self.clock())
            if not await self.kube.patch_status(*where, {"conditions": previous}):
                return
        merged = status.merged_conditions(previous, conditions, generation, self.clock())
        # A merge patch deletes members set to None: they are compared as absent.
        wanted = {"observedGeneration": generation, "conditions": merged, **extra}
        if all(current.get(k) == _without_nones(v) for k, v in wanted.items()):
            return
        if not await self.kube.patch_status(*where, wanted):
            return
        obj["status"] = {**current, **_without_nones(wanted)}
        for condition in status.transitions(previous, merged):
            failing = condition["status"] == ("True" if condition["type"] == "Stalled" else "False")
            await self._event(
                obj, "Warning" if failing else "Normal", condition["reason"], condition["message"]
            )

    # -----------------------------------------------------------------------------------------
    # Helpers
    # -----------------------------------------------------------------------------------------

    async def _api_keys(
        self, objects: Mapping[Key, Mapping[str, Any]]
    ) -> dict[tuple[str, str, str], list[str]]:
        """The API keys of every Workspace that names a Secret, by (namespace, Secret, key)."""
        found: dict[tuple[str, str, str], list[str]] = {}
        for (kind, namespace, _), obj in objects.items():
            reference = (
                (obj.get("spec") or {}).get("apiKeysSecretRef") if kind == "Workspace" else None
            )
            if not isinstance(reference, dict) or not isinstance(reference.get("name"), str):
                continue
            key = reference.get("key", "apiKeys")
            value = await self.kube.secret_value(namespace, reference["name"], key)
            if value is not None:
                found[(namespace, reference["name"], key)] = api_keys_in(value)
        return found

    def _pipeline_of(self, namespace: str, pipeline_id: int) -> dict[str, Any] | None:
        for (kind, ns, _), obj in self.objects.items():
            if (
                kind == "ExportPipeline"
                and ns == namespace
                and (obj.get("status") or {}).get("id") == pipeline_id
            ):
                return obj
        return None

    async def _event(self, obj: Mapping[str, Any], kind: str, reason: str, message: str) -> None:
        try:
            await self.kube.post_event(obj, kind, reason, message)
        except Exception:  # an Event is a courtesy: never fail a reconcile for one
            log.warning("could not post event %s on %s", reason, obj["metadata"]["name"])


async def _until_set(timeout: float, *events: asyncio.Event) -> None:
    """Wait until one of ``events`` is set, or ``timeout`` seconds have passed."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def _workspace_keys(
    workspace: Workspace, keys: Mapping[tuple[str, str, str], list[str]]
) -> list[str] | None:
    reference = workspace.api_keys_secret
    if reference is None:
        return []
    return keys.get((workspace.namespace, reference.name, reference.key))


def _valid_by_namespace(reconciled: list[Reconciled]) -> dict[str, _Namespace]:
    namespaces: dict[str, _Namespace] = {}
    for item in reconciled:
        entry = namespaces.setdefault(item.outcome.resource.namespace, _Namespace())
        value = item.outcome.value
        if isinstance(value, Workspace):
            entry.workspace = value
        elif isinstance(value, Connection):
            entry.connections[value.id] = value
    return namespaces


def _last_run_status(run: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": run["id"],
        "jobName": run["jobName"],
        "startedAt": run["startTime"],
        "finishedAt": run["endTime"],
        "outcome": run["outcome"],
        "counts": run["counts"],
        "error": run["error"],
    }


def _started(job: Mapping[str, Any], now: datetime) -> datetime:
    text = (job.get("status") or {}).get("startTime") or job["metadata"].get("creationTimestamp")
    if not isinstance(text, str):
        return now
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _without_nones(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _without_nones(item) for key, item in value.items() if item is not None}
    return value


def _plain(body: Mapping[str, Any]) -> dict[str, Any]:
    """A kopf body (a live view) as a plain dict that later events cannot change."""
    return {key: _plain_value(value) for key, value in body.items()}


def _plain_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_value(item) for item in value]
    return value
