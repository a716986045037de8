"""``sluice local PATH``: Sluice's whole job on one machine.

The manifests under PATH are applied to the store (the ``sluice apply`` core, pruning what these
paths applied before and no longer hold) and watched: a file edited, added or removed is applied
again within a second, once it has held still for one look (an editor's save is never applied
half done). The read-only API serves the store. Every enabled pipeline runs on its schedule with
the CronJob's rules (``schedulePeriod`` from ``scheduleStart``, UTC; a run still going when the
next is due makes that one skipped, as ``concurrencyPolicy: Forbid`` does), each run a child
``sluice export`` prepared as a runner pod is (:mod:`sluice.local.runs`). An invalid edit is
reported with the API's message and the last valid version keeps running.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from sluice.controller.runner import SecretValues
from sluice.controller.schedule import next_run
from sluice.controller.summary import RunSummary
from sluice.installation import INSTALLED
from sluice.local.runs import LocalRun, PipelineSetup, WarehouseTurns, duckdb_file, prepare_run
from sluice.manifests import manifest_files, read_manifests
from sluice.model.connection import Connection
from sluice.model.pipeline import Pipeline
from sluice.model.workspace import Workspace
from sluice.reconcile import NothingToPruneError, apply, apply_set_of
from sluice.store import Change, FinishedRun, Store

#: How often the manifests and the schedule are looked at.
POLL_SECONDS = 0.25
#: How long running exports are given to stop cleanly when local mode stops.
STOP_SECONDS = 120.0

_KEPT = "what was applied before keeps running"

_Key = tuple[str, str, str]
_Snapshot = dict[Path, tuple[int, int]]


@dataclass
class _Scheduled:
    """When a pipeline runs next, under the schedule it was computed for."""

    period: str | None
    start: int
    due: datetime | None


@dataclass
class LocalMode:
    """The manifests under ``paths`` kept applied to ``store`` and their pipelines run."""

    paths: list[str]
    store: Store
    #: Where each run's config and credentials are written.
    state: Path
    say: Callable[[str], None]
    setups: dict[int, PipelineSetup] = field(default_factory=dict)
    #: Summaries of the runs that ended, in the order they ended.
    finished: list[tuple[PipelineSetup, RunSummary]] = field(default_factory=list)
    #: Whether the last apply reported an invalid resource or unreadable manifests.
    invalid: bool = False
    _secrets: SecretValues = field(default_factory=dict)
    _valid: dict[_Key, Workspace | Connection | Pipeline] = field(default_factory=dict)
    #: The files as they were last applied, and as they were at the last look.
    _applied: _Snapshot | None = None
    _looked: _Snapshot | None = None
    _schedules: dict[int, _Scheduled] = field(default_factory=dict)
    _runs: dict[int, tuple[LocalRun, asyncio.Task[None]]] = field(default_factory=dict)
    _turns: WarehouseTurns = field(default_factory=WarehouseTurns)

    # -- the manifests ---------------------------------------------------------------------

    def refresh(self) -> bool:
        """Apply the manifests if a file changed since they were last applied and has not
        changed since the last look; whether they were applied."""
        snapshot = _snapshot(self.paths)
        settled = snapshot == self._looked
        self._looked = snapshot
        first = self._applied is None
        if snapshot == self._applied or not (first or settled):
            return False
        self._applied = snapshot
        manifests = read_manifests(self.paths)
        if manifests.problems:
            # An unreadable file must not look like deleted objects: nothing is applied.
            for problem in manifests.problems:
                self.say(problem.text())
            self.say(f"nothing applied: fix the manifests; {_KEPT}")
            self.invalid = True
            return True
        try:
            applied = apply(self.store, manifests, INSTALLED, apply_set_of(self.paths), prune=True)
        except NothingToPruneError as refused:
            self.say(f"{refused}; {_KEPT}")
            return True
        self.invalid = any(item.error is not None for item in applied)
        for item in applied:
            resource = item.resource
            key = (resource.kind, resource.namespace, resource.name)
            if item.change is Change.PRUNED:
                self._valid.pop(key, None)
            elif item.value is not None:
                self._valid[key] = item.value
            if first or item.change is not Change.UNCHANGED or item.error is not None:
                suffix = "; the last valid version keeps running" if key in self._valid else ""
                self.say(item.line() + (suffix if item.error is not None else ""))
        self._secrets = manifests.secrets
        self.setups = _setups(self._valid.values())
        return True

    # -- scheduling ------------------------------------------------------------------------

    def schedule(self, now: datetime) -> None:
        """Start the runs that are due at ``now``."""
        for pipeline_id in list(self._schedules):
            if pipeline_id not in self.setups:
                del self._schedules[pipeline_id]
        for pipeline_id, setup in self.setups.items():
            pipeline = setup.pipeline
            period = pipeline.schedule_period if pipeline.enabled else None
            scheduled = self._schedules.get(pipeline_id)
            if scheduled is None or (scheduled.period, scheduled.start) != (
                period,
                pipeline.schedule_start,
            ):
                due = next_run(period, pipeline.schedule_start, now)
                self._schedules[pipeline_id] = _Scheduled(period, pipeline.schedule_start, due)
                continue
            if scheduled.due is None or now < scheduled.due:
                continue
            missed, scheduled.due = scheduled.due, next_run(period, pipeline.schedule_start, now)
            if pipeline_id in self._runs:
                self.say(
                    f"{_label(setup)}: still running; the run due at {missed:%H:%M} UTC skipped"
                )
                continue
            self.start(pipeline_id)

    def start(self, pipeline_id: int) -> None:
        """Start a run of the pipeline now, unless one is going."""
        if pipeline_id in self._runs:
            return
        setup = self.setups[pipeline_id]
        folder = self.state / "runs" / str(pipeline_id)
        command, environment = prepare_run(setup, self._secrets, folder)
        label = _label(setup)
        run = LocalRun(command, environment, folder, lambda line: self.say(f"{label}: {line}"))
        job_name = f"local-{run.started_at:%Y%m%d-%H%M%S}"
        run_id = self.store.start_run(pipeline_id, job_name, run.started_at)
        self.say(f"{label}: run {job_name} started")
        turn = self._turns.turn(duckdb_file(setup.workspace, environment), label, self.say)
        task = asyncio.create_task(self._finish(pipeline_id, setup, run, run_id, turn))
        self._runs[pipeline_id] = (run, task)

    async def _finish(
        self,
        pipeline_id: int,
        setup: PipelineSetup,
        run: LocalRun,
        run_id: int,
        turn: contextlib.AbstractAsyncContextManager[None],
    ) -> None:
        try:
            async with turn:
                summary = await run.run()
            self.store.finish_run(run_id, FinishedRun.of(summary))
            self.finished.append((setup, summary))
            self.say(f"{_label(setup)}: {summary_line(summary)}")
        finally:
            del self._runs[pipeline_id]

    # -- the loop --------------------------------------------------------------------------

    async def watch(self, stop: asyncio.Event) -> None:
        """Apply and schedule until ``stop`` is set, then stop the runs cleanly."""
        try:
            while not stop.is_set():
                self.refresh()
                self.schedule(datetime.now(UTC))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), POLL_SECONDS)
        finally:
            await self.stop_runs()

    async def once(self, stop: asyncio.Event) -> list[tuple[PipelineSetup, RunSummary]]:
        """Run every enabled pipeline once (stopped cleanly if ``stop`` is set meanwhile)."""
        self.refresh()
        for pipeline_id, setup in self.setups.items():
            if setup.pipeline.enabled:
                self.start(pipeline_id)
        ending = [asyncio.create_task(self.finish_runs()), asyncio.create_task(stop.wait())]
        await asyncio.wait(ending, return_when=asyncio.FIRST_COMPLETED)
        for task in ending:
            task.cancel()
        await self.stop_runs()
        return self.finished

    def running(self) -> bool:
        """Whether an export is running."""
        return bool(self._runs)

    async def finish_runs(self, timeout: float | None = None) -> None:
        """Wait for the running exports to end (at most ``timeout`` seconds)."""
        if self._runs:
            await asyncio.wait([task for _, task in self._runs.values()], timeout=timeout)

    async def stop_runs(self) -> None:
        """Ask every running export to stop, and wait for their summaries."""
        if not self._runs:
            return
        for run, _ in self._runs.values():
            run.stop()
        self.say(f"stopping {len(self._runs)} running export(s): waiting for their last writes")
        await self.finish_runs(STOP_SECONDS)


def once_exit_code(finished: list[tuple[PipelineSetup, RunSummary]], invalid: bool) -> int:
    """As ``sluice export``'s: 0 when every run succeeded, 2 when the worst partially failed,
    1 when one failed, nothing ran, or a manifest was invalid."""
    outcomes = {summary.outcome for _, summary in finished}
    if invalid or not finished or "Failed" in outcomes:
        return 1
    return 2 if "PartiallyFailed" in outcomes else 0


def summary_line(summary: RunSummary) -> str:
    """``Succeeded in 3.2 s: 48,112 selected, 47,600 created…``"""
    seconds = (summary.finished_at - summary.started_at).total_seconds()
    counts = ", ".join(f"{value:,} {name}" for name, value in summary.counts.items() if value)
    text = f"{summary.outcome} in {seconds:.1f} s" + (f": {counts}" if counts else "")
    return text + (f"; {summary.error}" if summary.error else "")


def _label(setup: PipelineSetup) -> str:
    return f"{setup.pipeline.namespace}/{setup.pipeline.resource_name}"


def _setups(values: Iterable[Workspace | Connection | Pipeline]) -> dict[int, PipelineSetup]:
    """Each valid pipeline whose Workspace and Connection are valid too."""
    values = list(values)
    workspaces = {v.namespace: v for v in values if isinstance(v, Workspace)}
    connections = {(v.namespace, v.id): v for v in values if isinstance(v, Connection)}
    setups: dict[int, PipelineSetup] = {}
    for pipeline in (v for v in values if isinstance(v, Pipeline)):
        workspace = workspaces.get(pipeline.namespace)
        connection = connections.get((pipeline.namespace, pipeline.connection))
        if workspace is not None and connection is not None:
            setups[pipeline.id] = PipelineSetup(pipeline, workspace, connection)
    return setups


def _snapshot(paths: list[str]) -> _Snapshot:
    """Each manifest file's modification time and size: what tells an edit."""
    snapshot: _Snapshot = {}
    for path in manifest_files(paths):
        with contextlib.suppress(OSError):
            status = path.stat()
            snapshot[path] = (status.st_mtime_ns, status.st_size)
    return snapshot


async def run_local(
    paths: list[str],
    store_url: str,
    *,
    listen: str | None,
    once: bool,
    state: Path,
    admin_keys: list[str],
    out: TextIO = sys.stdout,
) -> int:
    """``sluice local``: until SIGINT or SIGTERM (exit code 0), or with ``once`` until every
    enabled pipeline ran once (exit code as :func:`once_exit_code` says)."""
    # uvicorn only when serving.
    from sluice.api.server import EmbeddedServer, embedded_server  # noqa: PLC0415

    def say(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    store = Store(store_url)
    mode = LocalMode(paths, store, state, say)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stop.set)
    api: EmbeddedServer | None = None
    serving: asyncio.Task[None] | None = None
    try:
        if listen is not None:
            # Bound before anything is applied: a busy address ends local mode at once.
            api = embedded_server(store, listen, admin_keys)
            serving = asyncio.create_task(api.serve())
        if once:
            finished = await mode.once(stop)
            if not finished:
                say("no enabled pipeline to run")
            return once_exit_code(finished, mode.invalid)
        await mode.watch(stop)
        return 0
    finally:
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(number)
        if api is not None and serving is not None:
            api.should_exit = True
            await serving
        store.close()
