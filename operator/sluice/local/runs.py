"""One local run of a pipeline: what a runner pod gets, laid out on disk, and the same command.

The operator gives a runner pod a ConfigMap (the export config, built by
:func:`sluice.controller.builders.export_config`), the Connection's Secret mounted as files and
the warehouse DSN in an environment variable, then runs ``sluice export --config``. A local run
gets exactly that: the config file and the credentials folder under the run folder, the DSN in
the child's environment, and the same command in a child process. Only the credentials
folder's path differs from a pod's, so local runs and cluster runs cannot drift apart.

Runs on the same DuckDB file take turns (:class:`WarehouseTurns`): DuckDB lets one process at a
time open a file for writing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sluice.controller.builders import config_text, export_config
from sluice.controller.runner import (
    CONFIG_FILE,
    EXPORT_COMMAND,
    WAREHOUSE_DSN_ENV,
    SecretValues,
    runner_secrets,
)
from sluice.controller.summary import RunSummary, parse_summary
from sluice.model.connection import Connection
from sluice.model.pipeline import Pipeline
from sluice.model.workspace import Workspace

TERMINATION_LOG_FILE = "termination-log"
CREDENTIALS_FOLDER = "credentials"
_SUMMARY_LOG_LINES = 5


@dataclass(frozen=True)
class PipelineSetup:
    """A valid pipeline with the Workspace and Connection it was validated with."""

    pipeline: Pipeline
    workspace: Workspace
    connection: Connection


def prepare_run(
    setup: PipelineSetup, secrets: SecretValues, folder: Path
) -> tuple[list[str], dict[str, str]]:
    """Write the run's config and credentials under ``folder``; return the command to run and
    the environment variables to add."""
    folder.mkdir(parents=True, exist_ok=True)
    config = export_config(setup.pipeline, setup.workspace, setup.connection)
    environment, credentials = runner_secrets(setup.workspace, setup.connection, secrets)
    if setup.connection.credentials_secret is not None:
        mounted = folder / CREDENTIALS_FOLDER
        mounted.mkdir(mode=0o700, exist_ok=True)
        for old in mounted.iterdir():
            old.unlink()
        for key, value in credentials.items():
            _write_private(mounted / key, value)
        config["connection"]["credentialsDir"] = str(mounted)
    config_path = folder / CONFIG_FILE
    _write_private(config_path, config_text(config))
    # The CronJob's command, with this interpreter for ``sluice`` and the config's local path.
    command = [sys.executable, "-m", "sluice", *EXPORT_COMMAND[1:-1], str(config_path)]
    command += ["--termination-log", str(folder / TERMINATION_LOG_FILE)]
    return command, environment


def _write_private(path: Path, text: str) -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def duckdb_file(workspace: Workspace, environment: Mapping[str, str]) -> Path | None:
    """The DuckDB file a run of the workspace opens, given the environment :func:`prepare_run`
    returned (a relative path is the child's: it runs in this working folder); None for
    another warehouse."""
    warehouse = workspace.warehouse
    location = warehouse.path or environment.get(WAREHOUSE_DSN_ENV)
    if warehouse.type != "DuckDB" or not location:
        return None
    return Path(location).resolve()


class WarehouseTurns:
    """Runs on the same DuckDB file take turns, in the order they started: DuckDB lets one
    process at a time open a file for writing, so a second run at once would fail to open it."""

    def __init__(self) -> None:
        self._locks: dict[Path, asyncio.Lock] = {}
        self._holders: dict[Path, str] = {}

    @contextlib.asynccontextmanager
    async def turn(
        self, file: Path | None, label: str, say: Callable[[str], None]
    ) -> AsyncIterator[None]:
        """Hold ``file`` (None: no turn to take) for the run of ``label``, saying so when it
        has to wait."""
        if file is None:
            yield
            return
        lock = self._locks.setdefault(file, asyncio.Lock())
        if lock.locked():
            say(
                f"{label}: waiting for its turn on the DuckDB warehouse {file}, which "
                f"{self._holders[file]} is using (one run at a time per file)"
            )
        async with lock:
            self._holders[file] = label
            yield


class LocalRun:
    """A child ``sluice export``: started in a session of its own, so a Ctrl-C in the terminal
    reaches local mode only, which then asks the child to stop (SIGTERM) and waits for it."""

    def __init__(
        self,
        command: list[str],
        environment: Mapping[str, str],
        folder: Path,
        log: Callable[[str], None],
    ) -> None:
        self.command = command
        self.environment = environment
        self.folder = folder
        self.log = log
        self.started_at = datetime.now(UTC)
        self._process: asyncio.subprocess.Process | None = None
        self._stopping = False

    async def run(self) -> RunSummary:
        """Run the child to its end; its summary, or a Failed one saying why there is none."""
        if self._stopping:
            return self._failed("stopped before it started")
        termination_log = self.folder / TERMINATION_LOG_FILE
        termination_log.unlink(missing_ok=True)
        self._process = await asyncio.create_subprocess_exec(
            *self.command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, **self.environment},
            start_new_session=True,
        )
        last_lines = await self._relay_logs()
        code = await self._process.wait()
        with contextlib.suppress(OSError):
            summary = parse_summary(termination_log.read_text(encoding="utf-8"))
            if summary is not None:
                return summary
        detail = " | ".join(last_lines) or "no output"
        return self._failed(f"sluice export exited with code {code} without a summary: {detail}")

    def _failed(self, error: str) -> RunSummary:
        return RunSummary("Failed", self.started_at, datetime.now(UTC), {}, error)

    def stop(self) -> None:
        """Ask the child to stop cleanly (it records what the application acknowledged); a
        run that has not started yet never will."""
        self._stopping = True
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signal.SIGTERM)

    async def _relay_logs(self) -> list[str]:
        """Pass the child's log lines on; keep the last few, for a run that ends without a
        summary."""
        assert self._process is not None and self._process.stderr is not None
        last: list[str] = []
        async for raw in self._process.stderr:
            line = raw.decode(errors="replace").rstrip()
            if not line:
                continue
            self.log(_log_text(line))
            last = [*last, line][-_SUMMARY_LOG_LINES:]
        return last


def _log_text(line: str) -> str:
    """A JSON log line of ``sluice export`` as a short console line; other lines as they are."""
    try:
        event = json.loads(line)
    except ValueError:
        return line
    if not isinstance(event, dict) or "event" not in event:
        return line
    details = " ".join(
        f"{key}={value}"
        for key, value in event.items()
        if key not in ("time", "event", "pipeline", "name") and value is not None
    )
    return f"{event['event']} {details}".rstrip()
