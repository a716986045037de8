"""``sluice export``: one run of one pipeline, end to end, and how it reports.

The summary goes to stdout (JSON, one line) and to the termination-message file the operator
reads (``/dev/termination-log`` in a pod, ``$SLUICE_TERMINATION_LOG`` or ``--termination-log``
elsewhere). While the run goes, a progress line is drawn when stderr is a terminal; otherwise
stderr gets structured JSON log lines. Exit codes: 0 succeeded, 2 partially failed, 1 failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from sluice.apps.connector import ConnectorError
from sluice.apps.registry import connector_factory
from sluice.controller.builders import export_config
from sluice.controller.runner import SecretValues, runner_secrets
from sluice.controller.summary import RunSummary, encode_summary, timestamp_text
from sluice.engine.config import ExportConfig, parse_config
from sluice.engine.run import ExportRun
from sluice.model.connection import Connection
from sluice.model.pipeline import Pipeline
from sluice.model.workspace import Workspace
from sluice.warehouses import WarehouseError, open_warehouse

TERMINATION_LOG = "/dev/termination-log"
TERMINATION_LOG_ENV = "SLUICE_TERMINATION_LOG"
EXIT_CODES: Mapping[str, int] = {"Succeeded": 0, "PartiallyFailed": 2, "Failed": 1}
_PROGRESS_SECONDS = 0.5
_LOG_SECONDS = 10.0


def config_from_resources(
    pipeline: Pipeline,
    workspace: Workspace,
    connection: Connection,
    secrets: SecretValues,
) -> ExportConfig:
    """The config the operator would write for these resources, with the Secrets' values
    taken from the manifests instead of the pod's environment and files."""
    document = export_config(pipeline, workspace, connection)
    environ, credentials = runner_secrets(workspace, connection, secrets)
    return parse_config(document, environ=environ, credentials=credentials)


def run_export(
    config: ExportConfig,
    *,
    full: bool = False,
    termination_log: str | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> RunSummary:
    """Run the export and report its summary; never raises for what the run met."""
    reporter = _Reporter(config, err)
    summary = asyncio.run(_run(config, full, reporter))
    reporter.finish(summary)
    text = encode_summary(summary)
    out.write(text + "\n")
    out.flush()
    _write_termination_log(text, termination_log)
    return summary


async def _run(config: ExportConfig, full: bool, reporter: _Reporter) -> RunSummary:
    started = datetime.now(UTC)
    try:
        warehouse = await asyncio.to_thread(
            open_warehouse,
            config.warehouse.type,
            dsn=config.warehouse.dsn,
            path=config.warehouse.path,
        )
    except WarehouseError as error:
        return _failed(started, str(error))
    try:
        try:
            connector = connector_factory(config.connector)(config.settings, config.credentials)
        except (KeyError, ValueError, ConnectorError) as error:
            return _failed(started, f"the connection cannot be used: {error}")
        try:
            run = ExportRun(config, warehouse, connector, full=full, progress=reporter.progress)
            reporter.started(run.run_id)
            with _stopped_by_signals(run):
                return await run.run()
        except Exception as error:
            return _failed(started, f"internal error: {type(error).__name__}: {error}")
        finally:
            await connector.aclose()
    finally:
        await asyncio.to_thread(warehouse.close)


@contextlib.contextmanager
def _stopped_by_signals(run: ExportRun) -> Iterator[None]:
    """SIGTERM (a pod deleted, local mode stopping) and SIGINT (Ctrl-C) stop the run cleanly:
    the writes in flight are answered and recorded before it ends. A second signal is not
    caught, so it ends the process at once."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set in the main thread
        return
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)

    def stop(received: signal.Signals) -> None:
        for each in signals:
            loop.remove_signal_handler(each)
        run.stop(received.name)

    for each in signals:
        loop.add_signal_handler(each, stop, each)
    try:
        yield
    finally:
        for each in signals:
            loop.remove_signal_handler(each)


def _failed(started: datetime, error: str) -> RunSummary:
    return RunSummary("Failed", started, datetime.now(UTC), {}, error)


def _write_termination_log(text: str, path: str | None) -> None:
    target = path or os.environ.get(TERMINATION_LOG_ENV) or None
    if target is None and Path(TERMINATION_LOG).exists():
        target = TERMINATION_LOG
    if target is None:
        return
    try:
        Path(target).write_text(text, encoding="utf-8")
    except OSError as error:
        print(f"cannot write the summary to {target}: {error.strerror}", file=sys.stderr)


class _Reporter:
    """Progress on a terminal, JSON log lines otherwise."""

    def __init__(self, config: ExportConfig, err: TextIO) -> None:
        self.config = config
        self.err = err
        self.tty = err.isatty()
        self.last = 0.0

    def _log(self, event: str, **fields: Any) -> None:
        line = {
            "time": timestamp_text(datetime.now(UTC)),
            "event": event,
            "pipeline": self.config.pipeline_id,
            **fields,
        }
        self.err.write(json.dumps(line, separators=(",", ":")) + "\n")
        self.err.flush()

    def started(self, run_id: str) -> None:
        if not self.tty:
            self._log("run started", run=run_id, name=self.config.name)

    def progress(self, counts: Counter[str]) -> None:
        now = time.monotonic()
        if now - self.last < (_PROGRESS_SECONDS if self.tty else _LOG_SECONDS):
            return
        self.last = now
        done = counts["created"] + counts["updated"] + counts["failed"]
        if self.tty:
            self.err.write(
                f"\r{done:,} written ({counts['created']:,} created, "
                f"{counts['updated']:,} updated, {counts['failed']:,} failed) "
                f"of {counts['read']:,} read"
            )
            self.err.flush()
        else:
            self._log(
                "progress", **{k: counts[k] for k in ("read", "created", "updated", "failed")}
            )

    def finish(self, summary: RunSummary) -> None:
        if self.tty:
            self.err.write("\n")
            for note in summary.notes:
                self.err.write(f"note: {note}\n")
            self.err.flush()
        else:
            for note in summary.notes:
                self._log("note", message=note)
            self._log("run finished", outcome=summary.outcome, error=summary.error)
